"""A lean keep-alive HTTP/1.1 client for direct upstream calls, the proxy's hottest path.

aiohttp's `ClientSession` spends about as much CPU on one small upstream POST as the whole aiohttp
server spends on the client's request (timers, traces, URL objects, payload registry, stream
readers). An upstream call needs far less: one write of head and body, the answer parsed as it
arrives, and idle connections kept per origin. Calls through an outbound proxy keep using aiohttp.

Parsing is llhttp's (through `httptools`, the parser uvloop and aiohttp are built on), in its strict
mode, plus two rules of ours: only HTTP/1.x and only the `chunked` transfer coding. A malformed
answer (conflicting lengths, a length with a transfer coding, a bad chunk size or status line,
whitespace before a header name, an oversized head, a gzip body that inflates past
`MAX_INFLATED_BYTES`) fails with `UpstreamProtocolError` and its connection is never reused.

Every wait has a bound (`Timeouts`): the connect (DNS, Happy Eyeballs over the addresses, TLS), the
response head (`first_byte`), and the silence between two body reads (`idle`, not counted while the
body is paused because the client reads slowly). One timer per connection is re-armed only when it
fires, so a chunk costs a clock read, not a timer, and an answer that arrives whole in one read
never arms the idle one. A request goes out once: a pooled connection
that is found closed before any byte is written is replaced silently; once the request is written,
a lost connection is the attempt's failure, never a hidden second send.

`Response` offers the part of `aiohttp.ClientResponse` routing uses, and failures raise `aiohttp`
client errors, so the callers handle both clients alike.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from cliproxy.upstream.http1_response import Body, Response

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 200
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a gzip answer that inflates past this is refused (a gzip bomb)
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%"
_IDLE, _HEAD, _BODY = range(3)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Bounds of one upstream call, in seconds."""

    connect: float = 15.0
    first_byte: float = 600.0
    idle: float = 300.0


class UpstreamDisconnected(aiohttp.ServerDisconnectedError):
    """The upstream closed the connection before the answer was complete."""


class UpstreamProtocolError(aiohttp.ClientPayloadError):
    """The upstream's bytes are not valid HTTP/1.1."""


class UpstreamTimeout(aiohttp.ServerTimeoutError):
    """The upstream did not answer (or went silent) within a `Timeouts` bound."""


class DeadConnection(Exception):
    """A pooled connection was found closed before the request was written: use a new one."""


class Origin:
    """Where a URL's requests go: the pool key, the request target and the Host header."""

    __slots__ = ("host", "host_header", "key", "port", "request_line", "request_line_no_host", "target", "tls")

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
        self.request_line_no_host = f"POST {self.target} HTTP/1.1\r\n".encode()
        self.request_line = self.request_line_no_host + f"Host: {self.host_header}\r\n".encode()


def header_block(headers: Mapping[str, str]) -> tuple[bytes, bool]:
    """`Name: value` lines, encoded, and whether they set `Host` themselves; a CR or LF in a name or
    value (header injection) is refused."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        raise ValueError("newline or carriage return in an upstream header")
    return text.encode("utf-8"), any(name.lower() == "host" for name in headers)


class ConnectionPool(Protocol):
    """What a connection tells the pool it belongs to."""

    def put_back(self, conn: Connection) -> None: ...
    def forget(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One upstream socket, the parser of the answer in flight on it, and its watchdog timer."""

    __slots__ = (
        "_decoder",
        "_head",
        "_head_bytes",
        "_headers",
        "_idle_armed",
        "_inflated",
        "_last_rx",
        "_loop",
        "_parser",
        "_phase",
        "_timeouts",
        "_until_close",
        "_watch",
        "body",
        "idle_since",
        "keep_alive",
        "key",
        "lost",
        "paused",
        "pool",
        "transport",
    )

    def __init__(self, pool: ConnectionPool, key: tuple[str, int, bool]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.paused = False
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._phase = _IDLE
        self._head: asyncio.Future[Response] | None = None
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._head_bytes = 0
        self._decoder: Any = None
        self._inflated = 0
        self._until_close = False
        self._timeouts = Timeouts()
        self._last_rx = 0.0
        self._watch: asyncio.TimerHandle | None = None
        self._idle_armed = False
        self.body: Body | None = None
        self.keep_alive = True
        self.idle_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pool.forget(self)
        self._stop_watch()
        phase, self._phase = self._phase, _IDLE
        if phase == _HEAD:
            self._fail(UpstreamDisconnected("the upstream closed the connection before answering"))
        elif phase == _BODY:
            if self._until_close:  # the close is the end of this answer
                self._end_body(None)
            else:
                self._end_body(UpstreamDisconnected("the upstream closed the connection mid-answer"))

    def data_received(self, data: bytes) -> None:
        self._last_rx = self._loop.time()
        if self._phase == _IDLE:  # bytes nobody asked for (even while idle in the pool): out of step
            self.drop()
            return
        try:
            self._parser.feed_data(data)
            if self._phase == _BODY and not self._idle_armed:  # (an answer whole in one chunk never arms it)
                self._arm(self._timeouts.idle)
                self._idle_armed = True
        except httptools.HttpParserUpgrade:
            self._protocol_error(UpstreamProtocolError("the upstream switched protocols"))
        except UpstreamProtocolError as exc:
            self._protocol_error(exc)
        except httptools.HttpParserCallbackError as exc:  # one of ours raised inside a callback
            cause = exc.__cause__ or exc.__context__ or exc
            if not isinstance(cause, UpstreamProtocolError):
                cause = UpstreamProtocolError(f"upstream answer could not be read: {type(cause).__name__}: {cause}")
            self._protocol_error(cause)
        except Exception as exc:  # never let a bad answer escape into the loop: the reader would hang
            self._protocol_error(UpstreamProtocolError(f"upstream answer could not be read: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; `connection_lost` settles the answer

    def pause_writing(self) -> None:  # requests are written in one go; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- llhttp callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._phase != _HEAD:  # a second answer after the one we asked for
            raise UpstreamProtocolError("the upstream sent more than one answer")
        self._headers = CIMultiDict()
        self._head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES or len(self._headers) >= MAX_HEADERS:
            raise UpstreamProtocolError("upstream response head too large")
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:  # interim answers (103 Early Hints): llhttp ends them; wait for the real one
            return
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise UpstreamProtocolError(f"not an HTTP/1.x answer (HTTP/{version})")
        headers = self._headers
        transfer = headers.get("Transfer-Encoding")
        if transfer is not None and transfer.strip().lower() != "chunked":
            raise UpstreamProtocolError(f"unsupported upstream transfer-encoding: {transfer}")
        self.keep_alive = parser.should_keep_alive()
        self._until_close = transfer is None and "Content-Length" not in headers and status not in (204, 304)
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding and encoding != "identity":
            if encoding not in ("gzip", "x-gzip", "deflate"):
                raise UpstreamProtocolError(f"unsupported upstream content-encoding: {encoding}")
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib-wrapped deflate, by header
            self._inflated = 0
            del headers["Content-Encoding"]
            headers.popall("Content-Length", None)
        resp = Response(self, status, CIMultiDictProxy(headers), f"HTTP/{version}")
        self.body = resp.content
        self._phase = _BODY  # the idle bound replaces the first-byte one once this chunk is parsed
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(resp)

    def on_body(self, data: bytes) -> None:
        decoder = self._decoder
        if decoder is not None:
            room = MAX_INFLATED_BYTES - self._inflated
            data = decoder.decompress(data, room + 1)
            self._inflated += len(data)
            if self._inflated > MAX_INFLATED_BYTES or decoder.unconsumed_tail:
                raise UpstreamProtocolError(f"upstream body inflates past {MAX_INFLATED_BYTES} bytes")
            if not data:
                return
        body = self.body
        if body is not None:
            body._feed(data)

    def on_message_complete(self) -> None:
        if self._phase != _BODY:  # the end of an interim (1xx) answer
            return
        self._phase = _IDLE
        self._stop_watch()
        self._end_body(None)

    # -- request side ----------------------------------------------------------------------------

    def send(self, request: bytes, body: bytes, timeouts: Timeouts) -> asyncio.Future[Response]:
        transport = self.transport
        if self.lost or transport is None or transport.is_closing():
            raise DeadConnection
        self._head = head = self._loop.create_future()
        self._phase = _HEAD
        self._timeouts = timeouts
        self.body = None
        self._decoder = None
        self.keep_alive = True
        self._arm(timeouts.first_byte)
        self._idle_armed = False
        if len(body) < 16384:
            transport.write(request + body)
        else:
            transport.writelines((request, body))
        return head

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
            self._last_rx = self._loop.time()  # the silence while paused was ours, not the upstream's

    def finish(self, resp: Response) -> None:
        if self._phase == _IDLE and self.keep_alive and not self.lost and self.body is resp.content:
            self.resume()
            self.body = None
            self.pool.put_back(self)
        else:
            self.drop()

    def drop(self) -> None:
        self.keep_alive = False
        self._stop_watch()
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()

    # -- the watchdog ----------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._stop_watch()
        self._last_rx = self._loop.time()
        self._watch = self._loop.call_at(self._last_rx + seconds, self._check)

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _check(self) -> None:
        self._watch = None
        phase = self._phase
        if phase == _HEAD:
            self._timed_out(UpstreamTimeout(f"no answer within {self._timeouts.first_byte:g} s"))
            return
        if phase != _BODY:
            return
        idle = self._timeouts.idle
        now = self._loop.time()
        if self.paused or now - self._last_rx < idle:  # data came since (or we stopped reading): later
            since = now if self.paused else self._last_rx
            self._watch = self._loop.call_at(since + idle, self._check)
            return
        self._timed_out(UpstreamTimeout(f"the upstream sent nothing for {idle:g} s"))

    def _timed_out(self, exc: UpstreamTimeout) -> None:
        phase, self._phase = self._phase, _IDLE
        if phase == _HEAD:
            self._fail(exc)
        else:
            self._end_body(exc)
        self.drop()

    # -- endings ---------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_exception(exc)

    def _end_body(self, exc: BaseException | None) -> None:
        decoder, self._decoder = self._decoder, None
        if exc is None and decoder is not None and self.body is not None:
            tail = decoder.flush()
            if tail:
                self.body._feed(tail)
        if self.body is not None:
            self.body._end(exc)

    def _protocol_error(self, exc: UpstreamProtocolError) -> None:
        """Fail the answer in flight and drop the connection. The error is kept without its
        traceback: raised inside a parser callback, it would keep that frame, and with it the bytes
        being parsed (a gzip bomb's 64 MiB), alive in a cycle only the cyclic GC frees."""
        exc = exc.with_traceback(None)
        phase, self._phase = self._phase, _IDLE
        if phase == _HEAD:
            self._fail(exc)
        elif phase == _BODY:
            self._end_body(exc)
        self.drop()
