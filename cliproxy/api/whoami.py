"""`GET /v1/cliproxy/whoami`: a client key describes itself (scopes, limits, usage, expiry).

Authenticated like every `/v1` route, by the client key; it answers only about that key, so it
needs no management secret. `cliproxy whoami` prints it.
"""

from __future__ import annotations

from aiohttp import web

from cliproxy import jsonio
from cliproxy.api.models import visible_routes
from cliproxy.portal.answers import whoami_extra
from cliproxy.server.access import CLIENT
from cliproxy.server.services import SERVICES

PATH = "/v1/cliproxy/whoami"


def allowed_models(request: web.Request) -> list[str]:
    """The model ids this key may use: exactly what `/v1/models` lists for it."""
    return sorted(route.model for route in visible_routes(request))


async def get_whoami(request: web.Request) -> web.Response:
    identity = request[CLIENT]
    services = request.app[SERVICES]
    body = await services.policy.status(identity)
    body["allowed_models"] = allowed_models(request)
    if identity.owner:  # a member's key or CLI login token: who, which team, how old, what is left
        body["account"] = await whoami_extra(services.accounts, services.policy, identity.key_id)
    return web.Response(body=jsonio.dumps(body), content_type="application/json")
