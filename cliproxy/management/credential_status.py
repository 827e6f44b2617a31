"""`GET /credential-status`: every upstream credential of the running snapshot with its cooldowns.

`cliproxy auth status --url` joins this with what it reads locally (config and auth-dir), since
only the running proxy knows which (credential, model) pairs are cooling down and until when.
Credentials are named the way the CLI names them: the config path (`claude-api-key[0]`,
`openai-compatibility[0].api-key-entries[1]`) or the auth file's name. No secret is included.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cliproxy.appkeys import ROUTING, RUNTIME
from cliproxy.management.http import json_response
from cliproxy.routing.credentials import Credential

routes = web.RouteTableDef()


def credential_name(cred: Credential) -> str:
    """The config path of a config credential, or the file name of an auth-dir credential."""
    name = getattr(cred.source, "name", None)
    return str(name) if cred.source is not None and name else cred.label or cred.id


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@routes.get("/credential-status")
async def get_credential_status(request: web.Request) -> web.Response:
    runtime = request.config_dict[RUNTIME].current
    state = request.config_dict.get(ROUTING)
    now, mono = time.time(), state.clock() if state is not None else 0.0
    cooling: dict[str, list[dict[str, Any]]] = {}
    if state is not None:
        for (cred_id, model), cooldown in state.cooldowns.items():
            left = cooldown.until - mono
            if left > 0:
                cooling.setdefault(cred_id, []).append(
                    {
                        "model": model,
                        "until": _rfc3339(now + left),
                        "seconds": round(left, 1),
                        "reason": cooldown.reason,
                        "status": cooldown.status,
                    }
                )
    items = [
        {
            "name": credential_name(cred),
            "id": cred.id,
            "auth_index": cred.auth_index,
            "provider": cred.provider,
            "disabled": cred.disabled,
            "cooldowns": sorted(cooling.get(cred.id, []), key=lambda c: str(c["model"])),
        }
        for cred in runtime.catalog.credentials
    ]
    return json_response({"credentials": items})
