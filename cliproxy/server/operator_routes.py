"""The operator's routes: `/readyz`, `/metrics` and `/openapi.json` (`/healthz` stays in `app.py`).

`/metrics` is open to a loopback socket peer. Whether a peer is local is decided by the socket
address; `X-Forwarded-For` is only read when that peer is a configured trusted proxy, and then it
can only make a request remote, never local (a proxy on this machine forwarding the internet is
not local). From anywhere else it takes the management secret as a Bearer token (the management
guard's check: bcrypt with its cache, and the same failure counting and bans), unless
`metrics.allow-remote` is true. `metrics.enabled: false` makes it a 404.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

from cliproxy import jsonio
from cliproxy.management.guard import GuardState, client_ip, go_duration, is_local, presented_key, verify
from cliproxy.metrics.registry import CONTENT_TYPE
from cliproxy.runtime import Runtime
from cliproxy.server.readiness import run_checks
from cliproxy.server.services import SERVICES

GUARD_STATE = web.AppKey("guard_state", GuardState)  # shared with the management guard: one ban list
OPENAPI_RESOURCE = "data/openapi.json"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = jsonio.dumps({"error": message})
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def local_peer(request: web.Request, runtime: Runtime) -> bool:
    """The socket peer is this machine, and so is the client a trusted proxy says it forwards."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple | list) and peer and not is_local(str(peer[0])):
        return False
    return is_local(client_ip(request, runtime))


async def remote_refusal(request: web.Request, runtime: Runtime, state: GuardState) -> web.Response | None:
    """None when a remote scraper presents the management secret (or a viewer key), else the refusal."""
    ip = client_ip(request, runtime)
    left = await state.bans.ban_left(ip)
    if left:
        return _error(403, f"IP banned due to too many failed attempts. Try again in {go_duration(left)}")
    access = runtime.management
    if not access.enabled:
        return _error(403, "metrics are served to this machine only (set metrics.allow-remote, or a management secret)")
    key = presented_key(request)
    if not key:
        return _error(401, "missing management key", {"WWW-Authenticate": 'Bearer realm="cliproxy metrics"'})
    if await verify(state, access, key) is None:
        await state.bans.fail(ip)
        return _error(401, "invalid management key", {"WWW-Authenticate": 'Bearer realm="cliproxy metrics"'})
    await state.bans.succeed(ip)
    return None


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    runtime = services.holder.current
    settings = runtime.config.metrics
    if not settings.enabled:
        raise web.HTTPNotFound()
    if not settings.allow_remote and not local_peer(request, runtime):
        refusal = await remote_refusal(request, runtime, request.app[GUARD_STATE])
        if refusal is not None:
            return refusal
    body = services.metrics.render() if services.shared is None else await services.shared.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def readyz(request: web.Request) -> web.Response:
    ready, checks = await run_checks(request.app[SERVICES].readiness)
    body = jsonio.dumps({"status": "ready" if ready else "not ready", "checks": checks})
    return web.Response(body=body, status=200 if ready else 503, content_type="application/json")


@cache
def openapi_document() -> bytes:
    """The OpenAPI description kept in the package (a test holds it to the router)."""
    return resources.files("cliproxy").joinpath(OPENAPI_RESOURCE).read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_document(), content_type="application/json")


def add_operator_routes(app: web.Application) -> None:
    """`/readyz`, `/metrics`, `/openapi.json` (HEAD too, for probes)."""
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
