"""A lean keep-alive HTTP/1.1 client for direct upstream calls, the proxy's hottest path.

aiohttp's `ClientSession` spends about as much CPU on one small upstream POST as the whole aiohttp
server spends on the client's request (timers, traces, URL objects, payload registry, stream
readers). An upstream call needs far less: one write of head and body, one parse of the status line
and headers, the body handed over as it arrives (Content-Length, chunked, or until close), and idle
connections kept per origin. Calls through an outbound proxy (http, socks) keep using aiohttp.

`Response` offers the part of `aiohttp.ClientResponse` the dispatcher uses (`status`, `headers`,
`read`, `release`, `close`, `content.readany`/`iter_any`), and failures raise `aiohttp` client
errors, so the callers handle both clients alike.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from cliproxy.upstream.http1_response import Body, Response

MAX_HEAD_BYTES = 64 * 1024
MAX_IDLE_PER_ORIGIN = 64
IDLE_SECONDS = 15.0  # an idle connection older than this is not reused (as aiohttp's keepalive_timeout)
_NO_BODY_STATUSES = frozenset((204, 304))
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%"

# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class UpstreamDisconnected(aiohttp.ServerDisconnectedError):
    """The upstream closed the connection before the answer was complete."""


class UpstreamProtocolError(aiohttp.ClientPayloadError):
    """The upstream's bytes are not valid HTTP/1.1."""


class _Stale(Exception):
    """A reused idle connection was closed by the upstream before it answered: retry on a new one."""


class Origin:
    """Where a URL's requests go: the pool key, the request target and the Host header."""

    __slots__ = ("host", "host_header", "key", "port", "request_line", "target", "tls")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise aiohttp.InvalidURL(url)
        self.tls = scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        # Percent-encode what may not appear raw in a request target (a model id with a space or a
        # non-ASCII letter), leaving existing escapes alone, as aiohttp's URL handling does.
        path = quote(parts.path or "/", safe=_TARGET_SAFE)
        self.target = path + (f"?{quote(parts.query, safe=_TARGET_SAFE + '?')}" if parts.query else "")
        self.key = (self.host, self.port, self.tls)
        self.request_line = f"POST {self.target} HTTP/1.1\r\nHost: {self.host_header}\r\n".encode()


def header_block(headers: Mapping[str, str]) -> bytes:
    """`Name: value` lines, encoded; a CR or LF in a name or value (header injection) is refused."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        raise ValueError("newline or carriage return in an upstream header")
    return text.encode("utf-8")


class _Connection(asyncio.Protocol):
    """One upstream socket and the parser of the answer in flight on it."""

    __slots__ = (
        "_buf",
        "_decoder",
        "_head",
        "_remaining",
        "_state",
        "body",
        "idle_since",
        "keep_alive",
        "key",
        "lost",
        "no_body",
        "paused",
        "pool",
        "received",
        "transport",
    )

    def __init__(self, pool: Http1Pool, key: tuple[str, int, bool]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.paused = False
        self._state = _DONE
        self._buf = b""
        self._remaining = 0
        self._head: asyncio.Future[Response] | None = None
        self._decoder: Any = None
        self.body: Body | None = None
        self.keep_alive = True
        self.received = False
        self.no_body = False
        self.idle_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.forget(self)
        head = self._head
        if head is not None and not head.done():
            head.set_exception(_Stale() if not self.received else UpstreamDisconnected())
        elif self._state == _UNTIL_CLOSE:
            self._state = _DONE
            self._end_body(None)
        elif self._state != _DONE:
            self._state = _DONE
            self._end_body(UpstreamDisconnected("the upstream closed the connection mid-answer"))
        self._head = None

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            if self._state == _HEAD:
                data = self._parse_head(data)
            if data and self._state != _DONE:
                self._parse_body(data)
            elif data:  # bytes nobody asked for (even while idle in the pool): out of step, drop it
                self.drop()
        except Exception as caught:  # never let a bad answer escape into the loop: the reader would hang
            exc = (
                caught
                if isinstance(caught, UpstreamProtocolError)
                else UpstreamProtocolError(f"upstream answer could not be read: {type(caught).__name__}: {caught}")
            )
            self.keep_alive = False
            if self._head is not None and not self._head.done():
                self._head.set_exception(exc)
            self._state = _DONE
            self._end_body(exc)
            self.drop()

    def eof_received(self) -> bool:
        return False  # close the transport; `connection_lost` settles the answer

    def pause_writing(self) -> None:  # requests are written in one go; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- request side ----------------------------------------------------------------------------

    def send(self, request: bytes, body: bytes, *, no_body: bool = False) -> asyncio.Future[Response]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._head = head = loop.create_future()
        self._state = _HEAD
        self._buf = b""
        self.body = None
        self._decoder = None
        self.keep_alive = True
        self.received = False
        self.no_body = no_body
        if len(body) < 16384:
            self.transport.write(request + body)
        else:
            self.transport.writelines((request, body))
        return head

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def finish(self, resp: Response) -> None:
        if self._state == _DONE and self.keep_alive and not self.lost and self.body is resp.content:
            self.resume()
            self.body = None
            self.pool.put_back(self)
        else:
            self.drop()

    def drop(self) -> None:
        self.keep_alive = False
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()

    # -- parsing ---------------------------------------------------------------------------------

    def _parse_head(self, data: bytes) -> bytes:
        while True:
            buf = self._buf + data if self._buf else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise UpstreamProtocolError("upstream response head too large")
                self._buf = buf
                return b""
            self._buf = b""
            lines = buf[:end].decode("latin-1").split("\r\n")
            data = buf[end + 4 :]
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise UpstreamProtocolError(f"not an HTTP/1.1 status line: {lines[0][:60]!r}")
            status = int(code)
            if 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints): skip
                continue
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name[-1] in " \t":
                    raise UpstreamProtocolError(f"malformed upstream header line: {line[:60]!r}")
                headers.add(name, value.strip(" \t"))
            self._start_body(status, headers, version)
            return data

    def _start_body(self, status: int, headers: CIMultiDict[str], version: str) -> None:
        connection = headers.get("Connection", "").lower()
        self.keep_alive = (version == "HTTP/1.1" and "close" not in connection) or "keep-alive" in connection
        transfer = headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        if self.no_body or status in _NO_BODY_STATUSES:
            self._state = _DONE
        elif transfer:
            if transfer != "chunked":  # gzip transfer-coding is unheard of from APIs: refuse, not pass on
                raise UpstreamProtocolError(f"unsupported upstream transfer-encoding: {transfer}")
            self._state = _CHUNK_SIZE
        elif length is not None:
            if not length.isdigit():
                raise UpstreamProtocolError("invalid upstream content-length")
            self._remaining = int(length)
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding and encoding != "identity":
            if encoding not in ("gzip", "x-gzip", "deflate"):
                raise UpstreamProtocolError(f"unsupported upstream content-encoding: {encoding}")
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib-wrapped deflate, by header
            del headers["Content-Encoding"]
            headers.popall("Content-Length", None)
        resp = Response(self, status, CIMultiDictProxy(headers), version)
        self.body = resp.content
        if self._state == _DONE:
            self.body._end()
        head = self._head
        self._head = None
        if head is not None and not head.done():
            head.set_result(resp)

    def _deliver(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decoder.decompress(data)
            if not data:
                return
        if self.body is not None:
            self.body._feed(data)

    def _end_body(self, exc: BaseException | None) -> None:
        if exc is None and self._decoder is not None:
            tail = self._decoder.flush()
            if tail and self.body is not None:
                self.body._feed(tail)
        if self.body is not None:
            self.body._end(exc)

    def _parse_body(self, data: bytes) -> None:
        state = self._state
        if state == _LENGTH:
            remaining = self._remaining
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                self._deliver(data)
                return
            if len(data) > remaining:
                self.keep_alive = False
                data = data[:remaining]
            self._deliver(data)
            self._state = _DONE
            self._end_body(None)
            return
        if state == _UNTIL_CLOSE:
            self._deliver(data)
            return
        self._parse_chunked(data)

    def _parse_chunked(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        size = len(buf)
        state = self._state
        out: list[bytes] = []
        while pos < size:
            if state == _CHUNK_SIZE:  # fast path: a whole chunk (size line, data, CRLF) is here
                end = buf.find(b"\r\n", pos)
                if end > pos:
                    try:
                        chunk = int(buf[pos:end], 16)
                    except ValueError:  # an extension (`;name=value`) or junk: the general path
                        chunk = 0
                    stop = end + 2 + chunk
                    if chunk > 0 and stop + 2 <= size and buf[stop : stop + 2] == b"\r\n":
                        out.append(buf[end + 2 : stop])
                        pos = stop + 2
                        continue
            if state == _CHUNK_DATA:
                take = min(self._remaining, size - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    state = _CHUNK_END
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if size - pos > 4096:
                    raise UpstreamProtocolError("upstream chunk framing line too long")
                break
            line = buf[pos:end]
            pos = end + 2
            if state == _CHUNK_SIZE:
                hex_size = line.split(b";", 1)[0].strip()
                try:
                    chunk = int(hex_size, 16)
                except ValueError:
                    raise UpstreamProtocolError("invalid upstream chunk size") from None
                if chunk < 0:
                    raise UpstreamProtocolError("invalid upstream chunk size")
                if chunk:
                    self._remaining = chunk
                    state = _CHUNK_DATA
                else:
                    state = _TRAILERS
            elif state == _CHUNK_END:
                if line:
                    raise UpstreamProtocolError("upstream chunk not followed by CRLF")
                state = _CHUNK_SIZE
            elif state == _TRAILERS and not line:  # the blank line after any trailers: complete
                state = _DONE
                if pos < size:
                    self.keep_alive = False
                break
        self._buf = buf[pos:] if pos < size and state != _DONE else b""
        self._state = state
        if out:
            self._deliver(out[0] if len(out) == 1 else b"".join(out))
        if state == _DONE:
            self._end_body(None)


class Http1Pool:
    """Keep-alive connections per origin, and `post` with the signature the dispatcher calls."""

    __slots__ = ("_connect_timeout", "_header_blocks", "_idle", "_open", "_origins", "_ssl")

    def __init__(self, *, connect_timeout: float) -> None:
        self._connect_timeout = connect_timeout
        # Encoded header blocks of read-only mappings, by identity: a credential's static headers
        # are one long-lived `MappingProxyType`, so most requests reuse its bytes (kept alive here).
        self._header_blocks: dict[int, tuple[Mapping[str, str], bytes]] = {}
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._origins: dict[str, Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    def origin(self, url: str) -> Origin:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) > 4096:
                self._origins.clear()
            origin = self._origins[url] = Origin(url)
        return origin

    def put_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < MAX_IDLE_PER_ORIGIN:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            conn.drop()

    def forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            if self._ssl is None:  # loading the CA bundle reads files: not on the loop
                self._ssl = await asyncio.to_thread(ssl.create_default_context)
            context = self._ssl
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, origin.key), origin.host, origin.port, ssl=context
                )
        except TimeoutError:
            raise aiohttp.ConnectionTimeoutError(f"connecting to {origin.host_header} timed out") from None
        except OSError as exc:
            raise aiohttp.ClientConnectionError(
                f"cannot connect to {origin.host_header}: {exc.strerror or exc}"
            ) from exc
        self._open.add(conn)
        return conn

    async def post(
        self,
        url: str,
        *,
        data: bytes,
        headers: Mapping[str, str],
        proxy: str | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one POST and wait for the status and headers; the body follows in `Response.content`.

        Redirects are never followed (a 3xx is the answer), like the dispatcher asks of aiohttp."""
        assert proxy is None and not allow_redirects, "proxied calls and redirects go through aiohttp"
        origin = self.origin(url)
        if type(headers) is not MappingProxyType:  # built for this request: nothing to reuse
            block = header_block(headers)
        elif (cached := self._header_blocks.get(id(headers))) is not None and cached[0] is headers:
            block = cached[1]
        else:
            block = header_block(headers)
            if len(self._header_blocks) > 1024:
                self._header_blocks.clear()
            self._header_blocks[id(headers)] = (headers, block)
        request = b"%s%sContent-Length: %d\r\n\r\n" % (origin.request_line, block, len(data))
        idle = self._idle.get(origin.key)
        while True:
            reused = False
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
                    conn, reused = candidate, True
                    break
            if conn is None:
                conn = await self._connect(origin)
            try:
                return await conn.send(request, data)
            except _Stale:
                if reused:  # the upstream closed this idle connection before our bytes: a new one
                    continue
                raise UpstreamDisconnected("the upstream closed the connection before answering") from None
            except BaseException:
                conn.drop()
                raise

    async def close(self) -> None:
        for conn in list(self._open):
            conn.drop()
        self._idle.clear()
