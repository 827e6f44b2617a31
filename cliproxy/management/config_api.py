"""Read-only views of the running config: `GET /config` and `GET /reload-status`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.config.model import Config
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

# Left out of `GET /config` as CLIProxyAPI does; `remote-management` also holds the secret hash.
HIDDEN_KEYS = frozenset({"host", "port", "auth-dir", "remote-management"})


def config_view(config: Config) -> dict[str, Any]:
    """The config as JSON with YAML key names, without listener settings or the management secret."""
    data: dict[str, Any] = config.model_dump(mode="json", by_alias=True)
    if config.shared_state.password:  # the Redis password never leaves the process
        data["shared-state"]["redis-url"] = config.shared_state.masked_url
    return {k: v for k, v in data.items() if k not in HIDDEN_KEYS}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps(data), status=status, content_type="application/json")


@routes.get("/config")
async def get_config(request: web.Request) -> web.Response:
    return json_response(config_view(request.config_dict[SERVICES].holder.current.config))


@routes.get("/reload-status")
async def get_reload_status(request: web.Request) -> web.Response:
    status = request.config_dict[SERVICES].holder.reload_status
    when = dt.datetime.fromtimestamp(status.time, dt.UTC).isoformat().replace("+00:00", "Z")
    return json_response(
        {
            "time": when,
            "ok": status.ok,
            "message": status.message,
            "restart_required": list(status.restart_required),
        }
    )
