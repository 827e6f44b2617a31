"""The connection to Redis that every shared-state service uses, and whether Redis is up right now.

The proxy must start and serve while Redis is absent, so nothing here waits for Redis: `start`
launches a watcher that pings every second, marks the link up or down, and on every way up first
subscribes to the event channel and then runs the resync hooks (so a mirror misses no event between
its resync and its subscription). Every command is bounded by `timeout` (socket connect and read
timeouts, no retries), and any failure marks the link down at once, so callers fall back without
waiting for the next ping. `redis` is imported here only, and only when `redis-url` is set.

Events (`publish`) are small JSON objects `{"kind": ..., "node": ..., ...}` on one channel under
the key prefix; each service registers a handler for its kind and ignores its own node's events
when it already applied them locally.

TLS (`rediss://`) is redis-py's: the certificate is verified against the system's CAs unless the
URL's query names others (`?ssl_ca_certs=/path/ca.pem`, and `ssl_certfile`/`ssl_keyfile` for a
client certificate); redis-py passes the query through. Verification is never turned off here; a
URL that turns it off (`ssl_cert_reqs=none`, `ssl_check_hostname=false`) is logged as a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cliproxy import jsonio
from cliproxy.config.model import SharedState

log = logging.getLogger(__name__)

PING_SECONDS = 1.0
DEFAULT_TIMEOUT = 0.5
REFUSAL_LOG_SECONDS = 60.0  # one log line per kind of error answer (READONLY, OOM, ...) at most this often
MAX_REFUSAL_KINDS = 64  # the kinds remembered for that; past it they are forgotten together
Handler = Callable[[dict[str, Any]], None]
Resync = Callable[[], Awaitable[None]]


class SharedStateUnreachable(Exception):
    """Redis did not answer (down, or a command failed); the caller falls back or refuses."""


class RedisLink:
    """One process's Redis client, its up/down state and the event channel (see the module docstring)."""

    def __init__(self, url: str, prefix: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        import redis.asyncio as aioredis  # lazily: only processes with `shared-state.redis-url` need it
        from hiredis import pack_command
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError, ResponseError
        from redis.retry import Retry

        self.prefix = prefix
        self.masked_url = SharedState(redis_url=url).masked_url  # the password never reaches a log line
        self.node = uuid.uuid4().hex[:16]  # this process, in in-flight leases and events
        weakened = unverified_tls(url)
        if weakened:
            log.warning(
                "shared state: redis-url turns off TLS %s (%s): anyone on the path to Redis can read and "
                "change the shared state",
                "certificate verification" if "ssl_cert_reqs" in weakened else "host name checks",
                weakened,
            )
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.errors: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._pack: Callable[[tuple[Any, ...]], bytes] = pack_command
        self._answers: tuple[type[BaseException], ...] = (ResponseError,)  # Redis answered: the link is fine
        self.up = False
        self.down_since: float | None = time.time()
        self.last_error = "not connected yet"
        self.channel = prefix + "events"
        self._handlers: dict[str, Handler] = {}
        self._resyncs: list[Resync] = []
        self._watcher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._refusals: dict[str, tuple[float, int]] = {}  # kind → (last logged, answers not logged since)

    def key(self, *parts: str) -> str:
        """A Redis key under the configured prefix."""
        return self.prefix + ":".join(parts)

    def on_event(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def on_up(self, resync: Resync) -> None:
        """Run `resync` every time the link comes (back) up, after the channel is subscribed."""
        self._resyncs.append(resync)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="cliproxy-redis-watch")

    async def stop(self) -> None:
        for task in (self._listener, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *self.errors):
                    await task
        self._listener = self._watcher = None
        with contextlib.suppress(*self.errors):
            await self.client.aclose()

    async def wait_up(self, timeout: float) -> bool:
        """Whether the link is up within `timeout` seconds (startup waits briefly, never for long)."""
        deadline = time.monotonic() + timeout
        while not self.up and time.monotonic() < deadline:
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
        return self.up

    def failed(self, exc: BaseException) -> None:
        """A command failed: the link is down until the watcher's next ping succeeds (an error answer
        of Redis itself only is logged: the link works)."""
        if isinstance(exc, self._answers):
            self._refused(exc)
            return
        if self.up:
            self.up = False
            self.down_since = time.time()
            log.warning("shared state: lost Redis at %s (%s); retrying every second", self.masked_url, _text(exc))
        self.last_error = _text(exc)
        self._changed.set()

    def _refused(self, exc: BaseException) -> None:
        """Log an error answer, the first of its kind and then at most once a minute: during a
        failover (READONLY) or with Redis full (OOM) every limited request gets one."""
        kind = f"{exc.__class__.__name__} {str(exc).partition(' ')[0]}"  # redis-py's class, Redis's code
        now = time.monotonic()
        logged, skipped = self._refusals.get(kind, (-math.inf, 0))
        if now - logged < REFUSAL_LOG_SECONDS:
            self._refusals[kind] = (logged, skipped + 1)
            return
        if len(self._refusals) >= MAX_REFUSAL_KINDS and kind not in self._refusals:
            self._refusals.clear()
        self._refusals[kind] = (now, 0)
        more = f"; {skipped} more like it since the last line" if skipped else ""
        log.error("shared state: Redis refused a command (%s)%s", _text(exc), more)

    async def _watch(self) -> None:
        while True:
            try:
                await self.client.ping()
                if not self.up:
                    await self._come_up()
            except asyncio.CancelledError:
                raise
            except self.errors as exc:
                self.failed(exc)
            except Exception:  # the watcher must outlive any one bad pass (a resync bug)
                log.exception("shared state: watcher pass failed")
            await asyncio.sleep(PING_SECONDS)

    async def _come_up(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *self.errors):
                await self._listener
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="cliproxy-redis-events")
        for resync in self._resyncs:
            await resync()
        self.up = True
        self.down_since = None
        self.last_error = ""
        self._changed.set()
        log.info("shared state: connected to Redis at %s", self.masked_url)

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=PING_SECONDS)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    event = jsonio.loads(message["data"])
                    handler = self._handlers.get(event.get("kind", ""))
                    if handler is not None:
                        handler(event)
                except Exception:
                    log.exception("shared state: bad event on %s", self.channel)
        except asyncio.CancelledError:
            raise
        except self.errors as exc:
            self.failed(exc)
        finally:
            with contextlib.suppress(*self.errors):
                await pubsub.aclose()

    # ------------------------------------------------------------------ commands

    async def send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` on one pooled connection in one write, packed by hiredis (redis-py's own
        pipeline packs in Python, which costs more than everything else on this path), and read
        one reply each; an error answer is that command's reply. Raises the link's errors."""
        pack = self._pack
        packed = b"".join([pack(command) for command in commands])
        pool = self.client.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except self._answers as exc:  # an error answer to this command: the others still follow
                    replies.append(exc)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return replies

    async def publish(self, kind: str, **fields: Any) -> None:
        """Tell every process (this one included) about a change; a failure marks the link down (or
        is logged, for an error answer) and is raised, so the caller can say the event was not sent."""
        try:
            await self.client.publish(self.channel, jsonio.dumps({"kind": kind, "node": self.node, **fields}))
        except self.errors as exc:
            self.failed(exc)
            raise


def unverified_tls(url: str) -> str:
    """The query parameters of a `rediss://` URL that weaken certificate checks, or ''."""
    if not url.startswith("rediss://"):
        return ""
    weak = [
        f"{name}={value}"
        for name, value in parse_qsl(urlsplit(url).query)
        if (name == "ssl_cert_reqs" and value.lower() == "none")
        or (name == "ssl_check_hostname" and value.lower() in ("false", "0", "no", "n", "f"))
    ]
    return "&".join(weak)


def _text(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
