"""Serving for real: TLS, the event loop, the garbage collector's settings and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ipaddress
import logging
import os
import resource
import ssl
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from cliproxy import __version__
from cliproxy.config.load import ConfigError
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import REQUEST_ID
from cliproxy.server.app import build_app
from cliproxy.server.services import SERVICES
from cliproxy.server.worker_process import WorkerRole, follow_supervisor

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 30.0
# Net allocations before a young GC pass (Python's default: 700). See `calm_gc`.
GC_YOUNG_THRESHOLD = 20_000


class AccessLogger(AbstractAccessLogger):
    """One DEBUG line per request: method, path without the query (it may carry `?key=`), status, time."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            "%s %s %d %.1fms id=%s",
            request.method,
            request.path,
            response.status,
            time * 1000,
            request.get(REQUEST_ID, "-"),
        )


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
        app[SERVICES].prices.start_loading().add_done_callback(freeze)

    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    app.on_startup.append(on_startup)


async def warn_if_open(app: web.Application, *, host: str, port: int) -> None:
    """Warn when the front door lets anyone in: no client keys and no signed-up users (whose existence
    closes it even before they make keys). Runs after the services start, when the accounts are read."""
    services = app[SERVICES]
    if services.holder.current.keys.open and services.accounts.table.open:
        log.warning(
            "listening on %s with an empty api-keys: anyone who can reach port %d can use your upstream "
            "credentials; add client keys to the config",
            host or "every interface",
            port,
        )


def reachable_from_outside(host: str) -> bool:
    """Listening on every interface (`""`, `0.0.0.0`, `::`) or on an address other than loopback."""
    if host.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name or every interface: assume others can reach it


def raise_open_file_limit() -> None:
    """Lift the soft limit on open files to the hard one, as Go programs (CLIProxyAPI) do at start.

    Every open stream holds two descriptors (client and upstream); Debian's soft default of 1024
    would refuse connections at about 500 concurrent streams.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(
    holder: RuntimeHolder, *, host: str | None = None, port: int | None = None, worker: WorkerRole | None = None
) -> None:
    """Run until SIGINT/SIGTERM; in-flight requests get `SHUTDOWN_GRACE_SECONDS` to finish.

    `host` and `port` (from the command line or the environment) win over the config's. `worker`:
    this process is one of the supervisor's workers (`workers:` above 1), listening with
    `SO_REUSEPORT` beside its siblings and stopping when the supervisor is gone. Raises
    `ConfigError` when the TLS files cannot be used, `OSError` when the port cannot be bound.
    """
    import uvloop

    config = holder.current.config
    host = config.host if host is None else host
    port = config.port if port is None else port
    context = ssl_context(config.tls.cert, config.tls.key) if config.tls.enable else None
    raise_open_file_limit()
    app = build_app(holder, worker=None if worker is None else worker.index)
    if worker is not None:
        app.cleanup_ctx.append(follow_supervisor(worker))
    calm_gc(app)
    scheme = "https" if context else "http"
    log.info("cliproxy %s listening on %s://%s:%d", __version__, scheme, host or "*", port)
    if reachable_from_outside(host) and (worker is None or worker.index == 1):
        app.on_startup.append(functools.partial(warn_if_open, host=host, port=port))
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        app,
        host=host or None,
        port=port,
        ssl_context=context,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=logging.getLogger("cliproxy.access"),
        access_log_class=AccessLogger,
        print=None,
        handle_signals=True,
        handler_cancellation=True,  # a client that disconnects cancels its upstream request
        reuse_port=True if worker is not None else None,
    )
