"""The pool of the lean HTTP/1.1 client: keep-alive connections per origin, connects, and `post`.

A connect looks the name up through a short cache (a name is not resolved for every new
connection), races the addresses with Happy Eyeballs (a dead IPv6 route costs a quarter of a
second, not the connect timeout) and shakes hands with TLS, all within `Timeouts.connect`. Idle
connections are reused for `IDLE_SECONDS` at most, and closed once they have been idle that long
(one timer per pool, not per connection), so an upstream that keeps idle connections open for
minutes does not hold the proxy's sockets and descriptors that long.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import aiohappyeyeballs
import aiohttp

from cliproxy.upstream.http1 import Connection, DeadConnection, Origin, Timeouts, header_block
from cliproxy.upstream.http1_response import Response

MAX_IDLE_PER_ORIGIN = 64
IDLE_SECONDS = 15.0  # an idle connection older than this is not reused (as aiohttp's keepalive_timeout)
DNS_CACHE_SECONDS = 10.0
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended wait before racing the next address


class Http1Pool:
    """Keep-alive connections per origin, and `post` with the signature routing calls."""

    __slots__ = ("_dns", "_header_blocks", "_idle", "_open", "_origins", "_ssl", "_sweep", "timeouts")

    def __init__(self, *, timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()  # used when a call brings none
        # Encoded header blocks of read-only mappings, by identity: a credential's static headers
        # are one long-lived `MappingProxyType`, so most requests reuse its bytes (kept alive here).
        self._header_blocks: dict[int, tuple[Mapping[str, str], bytes, bool]] = {}
        self._idle: dict[tuple[str, int, bool], list[Connection]] = {}
        self._open: set[Connection] = set()
        self._origins: dict[str, Origin] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._sweep: asyncio.TimerHandle | None = None  # the next `_close_expired`, while any are idle

    def origin(self, url: str) -> Origin:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) > 4096:
                self._origins.clear()
            origin = self._origins[url] = Origin(url)
        return origin

    def put_back(self, conn: Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < MAX_IDLE_PER_ORIGIN:
            conn.idle_since = time.monotonic()
            idle.append(conn)
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._close_expired)
        else:
            conn.drop()

    def _close_expired(self) -> None:
        """Close the connections idle for `IDLE_SECONDS`; come back when the next one will be."""
        self._sweep = None
        now = time.monotonic()
        oldest_usable = now - IDLE_SECONDS
        next_expiry = None
        for idle in list(self._idle.values()):
            for conn in [c for c in idle if c.idle_since < oldest_usable]:
                conn.drop()  # (which takes it out of `idle`)
            if idle:  # the oldest left is first: connections are appended as they go idle
                expiry = idle[0].idle_since + IDLE_SECONDS
                next_expiry = expiry if next_expiry is None else min(next_expiry, expiry)
        if next_expiry is not None:
            self._sweep = asyncio.get_running_loop().call_later(max(0.0, next_expiry - now), self._close_expired)

    def forget(self, conn: Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def _addresses(self, host: str, port: int) -> list[Any]:
        """The host's addresses, from a short cache: a name is not looked up for every new connection."""
        now = time.monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if len(self._dns) > 1024:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_CACHE_SECONDS, infos)
        return infos

    async def _connect(self, origin: Origin, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            if self._ssl is None:  # loading the CA bundle reads files: not on the loop
                self._ssl = await asyncio.to_thread(ssl.create_default_context)
            context = self._ssl
        try:
            async with asyncio.timeout(timeout):
                infos = await self._addresses(origin.host, origin.port)
                sock = await aiohappyeyeballs.start_connection(infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
                try:
                    _, conn = await loop.create_connection(
                        lambda: Connection(self, origin.key),
                        sock=sock,
                        ssl=context,
                        server_hostname=origin.host if context is not None else None,
                    )
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise aiohttp.ConnectionTimeoutError(f"connecting to {origin.host_header} timed out") from None
        except OSError as exc:
            raise aiohttp.ClientConnectionError(
                f"cannot connect to {origin.host_header}: {exc.strerror or exc}"
            ) from exc
        self._open.add(conn)
        return conn

    def _head_of(self, origin: Origin, headers: Mapping[str, str], length: int) -> bytes:
        if type(headers) is not MappingProxyType:  # built for this request: nothing to reuse
            block, own_host = header_block(headers)
        elif (cached := self._header_blocks.get(id(headers))) is not None and cached[0] is headers:
            block, own_host = cached[1], cached[2]
        else:
            block, own_host = header_block(headers)
            if len(self._header_blocks) > 1024:
                self._header_blocks.clear()
            self._header_blocks[id(headers)] = (headers, block, own_host)
        line = origin.request_line_no_host if own_host else origin.request_line  # a configured Host wins
        return b"%s%sContent-Length: %d\r\n\r\n" % (line, block, length)

    async def post(
        self,
        url: str,
        *,
        data: bytes,
        headers: Mapping[str, str],
        timeouts: Timeouts | None = None,
    ) -> Response:
        """Send one POST and wait for the status and headers; the body follows in `Response.content`.

        Redirects are never followed (a 3xx is the answer)."""
        timeouts = timeouts or self.timeouts
        origin = self.origin(url)
        request = self._head_of(origin, headers, len(data))
        idle = self._idle.get(origin.key)
        while True:
            conn = None
            if idle:
                oldest_usable = time.monotonic() - IDLE_SECONDS
                while idle:
                    candidate = idle.pop()
                    if candidate.lost:
                        continue
                    if candidate.idle_since < oldest_usable:  # the upstream may have dropped it silently
                        candidate.drop()
                        continue
                    conn = candidate
                    break
            if conn is None:
                conn = await self._connect(origin, timeouts.connect)
            try:
                head = conn.send(request, data, timeouts)
            except DeadConnection:  # closed while it waited in the pool, before we wrote anything: another one
                conn.drop()
                continue
            try:
                return await head
            except BaseException:
                conn.drop()
                raise

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in list(self._open):
            conn.drop()
        self._idle.clear()
