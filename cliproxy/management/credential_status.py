"""`GET /credential-status`: every upstream credential of the running snapshot with its cooldowns.

With `routing.session-affinity`, the live bindings (the session as a short digest, the model route,
the credential) and each credential's count of bound sessions are there too.
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

from cliproxy.management.http import json_response
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@routes.get("/credential-status")
async def get_credential_status(request: web.Request) -> web.Response:
    services = request.config_dict[SERVICES]
    runtime = services.holder.current
    bindings = services.affinity.snapshot()
    bound: dict[str, int] = {}
    for binding in bindings:
        bound[binding.credential_id] = bound.get(binding.credential_id, 0) + 1
    now = time.time()
    cooling: dict[str, list[dict[str, Any]]] = {}
    for cooldown in request.config_dict[SERVICES].health.snapshot():
        if cooldown.seconds <= 0:
            continue
        cooling.setdefault(cooldown.credential_id, []).append(
            {
                "model": cooldown.model,
                "until": _rfc3339(now + cooldown.seconds),
                "seconds": round(cooldown.seconds, 1),
                "reason": cooldown.reason,
                "status": cooldown.status,
            }
        )
    items = [
        {
            "name": cred.name,
            "id": cred.id,
            "auth_index": cred.auth_index,
            "provider": cred.provider,
            "disabled": cred.disabled,
            "cooldowns": sorted(cooling.get(cred.id, []), key=lambda c: str(c["model"])),
            "sessions": bound.get(cred.id, 0),  # sessions bound to it (`routing.session-affinity`)
        }
        for cred in runtime.catalog.credentials
    ]
    routing = runtime.config.routing
    affinity = {
        "enabled": routing.session_affinity,
        "ttl": routing.session_affinity_ttl,
        "bindings": [
            {"session": b.session, "model": b.model, "credential": b.credential_id, "seconds_left": b.seconds_left}
            for b in bindings
        ],
    }
    return json_response({"credentials": items, "session_affinity": affinity})
