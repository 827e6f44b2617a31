"""The aiohttp application: route table, lifecycle, and how the process serves.

Feature modules plug in through `FEATURES`: each is `module:install` and receives the app before
it starts (to add routes, `cleanup_ctx` entries or signals). The route table of the client API is
written out here in full so a reader sees every public path in one place.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from cliproxy import __version__, jsonio
from cliproxy.api import chat, claude, gemini, models, responses, responses_ws
from cliproxy.appkeys import RUNTIME
from cliproxy.config.load import ConfigError
from cliproxy.request_log import log_request
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import add_cors_headers, front_door

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 100 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 30.0
# Net allocations before a young GC pass (Python's default: 700). See `calm_gc`.
GC_YOUNG_THRESHOLD = 20_000

# Feature modules installed into every app, in order ("module:function").
FEATURES: tuple[str, ...] = (
    "cliproxy.routing.dispatch:install",
    "cliproxy.logs:install",
    "cliproxy.log_files:install",
    "cliproxy.request_log:install",
    "cliproxy.watch:install",
    "cliproxy.management:install",
    "cliproxy.api.ws_relay:install",
    "cliproxy.api.responses_ws:install",
    "cliproxy.policy:install",
    "cliproxy.server.credentials:install",
    "cliproxy.management.oauth:install",
)

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
    if request.app[RUNTIME].current.safe_mode:  # spec §1: a warning page instead of the banner
        return web.Response(body=SAFE_MODE_PAGE, content_type="text/html", charset="utf-8")
    return web.Response(body=ROOT_BODY, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(status=200)
    return web.Response(body=HEALTH_BODY, content_type="application/json")


def add_client_routes(app: web.Application) -> None:
    """Every client-facing path (spec §6.1, client-protocols §4 for the Gemini `/v1` spellings)."""
    r = app.router
    r.add_post("/v1/chat/completions", chat.chat_completions)
    r.add_post("/v1/completions", chat.completions)
    r.add_post("/v1/responses", responses.create_response)
    r.add_post("/backend-api/codex/responses", responses.create_response)
    r.add_get("/v1/responses", responses_ws.responses_socket, allow_head=False)  # WebSocket mode (spec §3.2)
    r.add_get("/backend-api/codex/responses", responses_ws.responses_socket, allow_head=False)
    r.add_post("/v1/messages", claude.messages)
    r.add_post("/v1/messages/count_tokens", claude.count_tokens)
    r.add_post("/v1beta/models/{target:.+}", gemini.model_method)
    r.add_post("/v1/models/{target:.+}", gemini.model_method)
    r.add_get("/v1/models", models.list_models)
    r.add_get("/v1beta/models", models.list_models)
    r.add_get("/v1beta/models/{model:.+}", models.get_model)
    r.add_get("/v1/models/{model:.+}", models.get_model)


def response_hook(app: web.Application) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The one `on_response_prepare` hook (every response, sub-apps' too): CORS headers, the request
    id, the request log. One hook, not one per feature: each costs a coroutine per response."""

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        add_cors_headers(request, response)
        log_request(app, request, response)

    return prepare


def build_app(holder: RuntimeHolder, *, features: tuple[str, ...] | None = None) -> web.Application:
    """The whole server as an aiohttp app (tests run it with the aiohttp test server)."""
    app = web.Application(middlewares=[front_door()], client_max_size=MAX_REQUEST_BYTES)
    app[RUNTIME] = holder
    app.on_response_prepare.append(response_hook(app))
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)  # HEAD too (spec §8.1 health checks)
    add_client_routes(app)
    for spec in FEATURES if features is None else features:
        module_name, _, func_name = spec.partition(":")
        install: Callable[[web.Application], None] = getattr(importlib.import_module(module_name), func_name)
        install(app)
    return app


def ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """The server TLS context; raises `ConfigError` naming the file when it cannot be used."""
    for name, value in (("tls.cert", cert), ("tls.key", key)):
        file = Path(value).expanduser()
        if not file.is_file():
            raise ConfigError([f"{name}: file not found: {file}"])
        if not os.access(file, os.R_OK):
            raise ConfigError([f"{name}: file not readable: {file}"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(Path(cert).expanduser(), Path(key).expanduser())
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError([f"tls: cannot load the certificate and key ({exc.__class__.__name__}: {exc})"]) from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def calm_gc(app: web.Application) -> None:
    """Keep the cyclic garbage collector off the request path (the served process only, not tests).

    Reference counting frees almost everything a request allocates, but with Python's default
    threshold 64 requests in flight start a young pass every few requests and promote what is still
    live, and the full passes that follow walk every module, config and price-table object (80k+),
    tens of ms each: 10-15 % of the CPU of a passthrough. So: freeze what exists once the app has
    started (and again once the price table has loaded in the background), and raise the young
    threshold so in-flight requests are done before a pass sees them. Cycles are still collected.
    """

    def freeze(_: object = None) -> None:
        gc.collect()
        gc.freeze()

    async def on_startup(app: web.Application) -> None:
        freeze()
        from cliproxy.appkeys import POLICY

        policy = app.get(POLICY)
        if policy is not None:  # the price table loads in a worker thread after startup
            policy.start_loading_prices().add_done_callback(freeze)

    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    app.on_startup.append(on_startup)


def serve(holder: RuntimeHolder) -> None:
    """Run until SIGINT/SIGTERM; in-flight requests get `SHUTDOWN_GRACE_SECONDS` to finish.

    Raises `ConfigError` when the TLS files cannot be used, `OSError` when the port cannot be bound.
    """
    import uvloop

    from cliproxy.logs import AccessLogger

    config = holder.current.config
    context = ssl_context(config.tls.cert, config.tls.key) if config.tls.enable else None
    app = build_app(holder)
    calm_gc(app)
    scheme = "https" if context else "http"
    host = config.host or None
    log.info("cliproxy %s listening on %s://%s:%d", __version__, scheme, config.host or "*", config.port)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        app,
        host=host,
        port=config.port,
        ssl_context=context,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=logging.getLogger("cliproxy.access"),
        access_log_class=AccessLogger,
        print=None,
        handle_signals=True,
        handler_cancellation=True,  # a client that disconnects cancels its upstream request
    )
