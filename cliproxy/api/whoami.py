"""`GET /v1/cliproxy/whoami`: a client key describes itself (scopes, limits, usage, expiry).

Authenticated like every `/v1` route, by the client key; it answers only about that key, so it
needs no management secret. `cliproxy whoami` prints it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.appkeys import POLICY, RUNTIME
from cliproxy.policy import key_status, model_allowed
from cliproxy.server.access import CLIENT

PATH = "/v1/cliproxy/whoami"


def allowed_models(request: web.Request) -> list[str]:
    """The model ids of the current catalog this key may use."""
    identity = request[CLIENT]
    routes: dict[str, Any] = getattr(request.app[RUNTIME].current.catalog, "routes", {})
    return sorted(m for m in routes if model_allowed(identity.policy, m))


async def get_whoami(request: web.Request) -> web.Response:
    identity = request[CLIENT]
    body = key_status(request.app[POLICY], identity)
    body["allowed_models"] = allowed_models(request)
    return web.Response(body=jsonio.dumps(body), content_type="application/json")
