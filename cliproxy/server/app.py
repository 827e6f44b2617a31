"""The composition root: the aiohttp application with every route, service and lifecycle hook.

`build_app` is the one place that builds the server: the services (`build_services`), the front
door, the client API routes (written out in full, so a reader sees every public path here), the two
WebSocket registries, the management sub-app and the response hook.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from cliproxy import __version__, jsonio
from cliproxy.api import chat, claude, gemini, models, passthrough, responses, responses_ws, whoami, ws_relay
from cliproxy.management.app import PREFIX as MANAGEMENT_PREFIX
from cliproxy.management.app import build_management_app
from cliproxy.management.config_writer import CONFIG_WRITER, ConfigWriter
from cliproxy.management.control_panel import add_control_panel
from cliproxy.management.guard import GuardState
from cliproxy.management.oauth import add_web_logins
from cliproxy.management.usage_api import USAGE_STATS, UsageStats
from cliproxy.metrics.state import StateCollector
from cliproxy.portal.app import PREFIX as ACCOUNT_PREFIX
from cliproxy.portal.app import build_account_app
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import PROTECTED_PREFIXES, WS_RELAY_PATH, add_cors_headers, front_door
from cliproxy.server.operator_routes import GUARD_STATE, add_operator_routes
from cliproxy.server.services import SERVICES, Services, build_services

MAX_REQUEST_BYTES = 100 * 1024 * 1024

ROOT_BODY = jsonio.dumps(
    {
        "message": "CLI Proxy API Server",
        "endpoints": ["POST /v1/chat/completions", "POST /v1/completions", "GET /v1/models"],
        "version": __version__,
    }
)
HEALTH_BODY = b'{"status":"ok"}'

SAFE_MODE_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>cliproxy: example API keys</title></head>
<body>
<h1>The proxy API is switched off</h1>
<p><code>api-keys</code> in the config still holds the example values
<code>your-api-key-1</code>, <code>your-api-key-2</code> or <code>your-api-key-3</code>, which anyone can guess.
Every <code>/v1</code>, <code>/v1beta</code> and <code>/backend-api/codex</code> request answers 403 until they are
replaced.</p>
<p>To fix it, put your own keys in the config file (it reloads by itself), or call
<code>PUT /v0/management/api-keys</code> with your management key.</p>
</body></html>
"""


async def root(request: web.Request) -> web.Response:
    if request.app[SERVICES].holder.current.safe_mode:  # a warning page instead of the banner
        return web.Response(body=SAFE_MODE_PAGE, content_type="text/html", charset="utf-8")
    return web.Response(body=ROOT_BODY, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(status=200)
    return web.Response(body=HEALTH_BODY, content_type="application/json")


def add_client_routes(app: web.Application) -> None:
    """Every client-facing path (Gemini also under `/v1`, which google-genai 3.x uses by default)."""
    r = app.router
    r.add_post("/v1/chat/completions", chat.chat_completions)
    r.add_post("/v1/completions", chat.completions)
    r.add_post("/v1/responses", responses.create_response)
    r.add_post("/backend-api/codex/responses", responses.create_response)
    r.add_get("/v1/responses", responses_ws.responses_socket, allow_head=False)  # the Responses WebSocket
    r.add_get("/backend-api/codex/responses", responses_ws.responses_socket, allow_head=False)
    r.add_post("/v1/messages", claude.messages)
    r.add_post("/v1/messages/count_tokens", claude.count_tokens)
    r.add_post("/v1beta/models/{target:.+}", gemini.model_method)
    r.add_post("/v1/models/{target:.+}", gemini.model_method)
    r.add_get("/v1/models", models.list_models)
    r.add_get("/v1beta/models", models.list_models)
    r.add_get("/v1beta/models/{model:.+}", models.get_model)
    r.add_get("/v1/models/{model:.+}", models.get_model)
    r.add_get(whoami.PATH, whoami.get_whoami)
    r.add_get(WS_RELAY_PATH, ws_relay.relay_socket)
    # Passthrough routes: served untranslated by the credentials whose upstream has them.
    r.add_post("/v1/responses/compact", passthrough.compact)
    r.add_post("/backend-api/codex/responses/compact", passthrough.compact)
    r.add_post("/v1/alpha/search", passthrough.alpha_search)
    r.add_post("/backend-api/codex/alpha/search", passthrough.alpha_search)
    r.add_post("/v1/images/generations", passthrough.images_generations)
    r.add_post("/v1/images/edits", passthrough.images_edits)
    r.add_post("/v1beta/interactions", passthrough.interactions)


def response_hook(services: Services) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The one `on_response_prepare` hook (every response, sub-apps' too): CORS headers, the request
    id, the request log, and the end of an API request refused before routing (its summary line
    and metrics). One hook, not one per feature: each costs a coroutine per response."""
    log_request = services.request_logs.log
    refused = services.request_ends.refused

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        add_cors_headers(request, response)
        log_request(request, response)
        if response.status >= 400 and request.path.startswith(PROTECTED_PREFIXES):
            refused(request, response)

    return prepare


def worker_healthz(index: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`/healthz` of worker `index`: says which worker and process answered (load balancer checks,
    and seeing that connections reach every worker)."""
    body = jsonio.dumps({"status": "ok", "worker": index, "pid": os.getpid()})
    headers = {"X-Cliproxy-Worker": str(index)}

    async def handler(request: web.Request) -> web.Response:
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    return handler


def build_app(
    holder: RuntimeHolder, *, clock: Callable[[], float] = time.monotonic, worker: int | None = None
) -> web.Application:
    """The whole server as an aiohttp app (tests run it with the aiohttp test server).

    `clock` drives cooldowns; tests pass a hand-driven one. `worker`: the index of this worker
    process under `workers:` above 1 (None: the one process).
    """
    services = build_services(holder, clock=clock, worker=worker)
    app = web.Application(
        middlewares=[front_door(holder=holder, members=services.accounts)], client_max_size=MAX_REQUEST_BYTES
    )
    app[SERVICES] = services
    app.cleanup_ctx.append(services.run)
    app.on_response_prepare.append(response_hook(services))
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz if worker is None else worker_healthz(worker))  # HEAD too
    add_operator_routes(app)
    add_client_routes(app)

    sockets = responses_ws.ResponsesSockets()
    app[responses_ws.RESPONSES_SOCKETS] = sockets
    app.on_shutdown.append(sockets.close_on_shutdown)
    relay = ws_relay.RelaySessions()
    app[ws_relay.RELAY_SESSIONS] = relay
    holder.listeners.append(relay.on_swap)
    app.on_shutdown.append(relay.close_on_shutdown)

    app[CONFIG_WRITER] = ConfigWriter(services.reloader)
    stats = UsageStats(holder)
    app[USAGE_STATS] = stats
    services.usage.subscribe(stats.observe)
    services.metrics.add_collector(
        StateCollector(
            holder=holder,
            health=services.health,
            in_flight=lambda: services.usage.in_flight,
            websockets=lambda: len(sockets.open) + len(relay.open),
        )
    )
    guard = GuardState()  # one failure count and ban list for management and `/metrics`
    if services.shared is not None:  # failures and bans count across the cluster
        guard.bans = services.shared.guard_bans(guard.bans)
    app[GUARD_STATE] = guard
    add_web_logins(app, services.shared.login_mirror if services.shared is not None else None)
    app.add_subapp(MANAGEMENT_PREFIX, build_management_app(holder, guard=guard, accounts=services.accounts))
    app.add_subapp(ACCOUNT_PREFIX, build_account_app())  # users' own keys, spend, sign-in, CLI login
    add_control_panel(app, holder)  # `/management.html`: static files, no middleware of its own
    return app
