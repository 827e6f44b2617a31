"""Upstream answers that did not come straight off an HTTP connection, in `UpstreamResponse`'s shape.

Executors that deliver requests themselves (`Executor.transport`) hand routing one of these:
`FedResponse`, whose body arrives piece by piece from elsewhere (the frames of the AI Studio relay)
with the silence between two pieces bounded; `whole_response`, an answer already read in full (a
fallback host's refusal, a local error); `ReshapedResponse`, another answer whose body is
rewritten as it streams (the Code Assist envelope taken off). Routing reads them exactly as it
reads an HTTP answer, so failover, relaying and usage work unchanged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from cliproxy.upstream.clients import UpstreamResponse
from cliproxy.upstream.http1 import UpstreamTimeout


def header_proxy(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers))


class FedBody:
    """A body fed from elsewhere (`feed`, then `end`); reads wait at most `idle` seconds for data."""

    __slots__ = ("_chunks", "_eof", "_exc", "_idle", "_waiter")

    def __init__(self, idle: float) -> None:
        self._idle = idle
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed(self, data: bytes) -> None:
        if data and not self._eof:
            self._chunks.append(data)
            self._wake()

    def end(self, exc: BaseException | None = None) -> None:
        if not self._eof:
            self._eof, self._exc = True, exc
            self._wake()

    async def readany(self) -> bytes:
        while True:
            if self._chunks:
                data = b"".join(self._chunks)
                self._chunks.clear()
                return data
            if self._eof:
                if self._exc is not None:
                    raise self._exc
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self._idle):
                    await self._waiter
            except TimeoutError:
                raise UpstreamTimeout(f"the upstream sent nothing for {self._idle:g} s") from None

    async def read(self) -> bytes:
        chunks = []
        while chunk := await self.readany():
            chunks.append(chunk)
        return b"".join(chunks)

    def iter_any(self) -> FedBody:
        return self

    def __aiter__(self) -> FedBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class FedResponse:
    """Status and headers known; the body is fed (`content.feed` / `content.end`)."""

    __slots__ = ("content", "headers", "on_close", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], idle: float, on_close: Callable[[], None] | None = None
    ) -> None:
        self.status = status
        self.headers = header_proxy(headers)
        self.content = FedBody(idle)
        self.on_close = on_close  # told when routing gives the answer up (the client went away)

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        pass

    def close(self) -> None:
        self.content.end()
        if self.on_close is not None:
            on_close, self.on_close = self.on_close, None
            on_close()


def whole_response(status: int, headers: Mapping[str, str], body: bytes) -> FedResponse:
    """An answer whose whole body is already known."""
    resp = FedResponse(status, headers, idle=1.0)
    resp.content.feed(body)
    resp.content.end()
    return resp


class ReshapedBody:
    """Another answer's body, each piece passed through `reshape` (which may hold bytes back);
    `finish` gives what it held when the body ends."""

    __slots__ = ("_done", "_finish", "_inner", "_reshape")

    def __init__(self, inner: UpstreamResponse, reshape: Callable[[bytes], bytes], finish: Callable[[], bytes]) -> None:
        self._inner = inner
        self._reshape = reshape
        self._finish = finish
        self._done = False

    async def readany(self) -> bytes:
        while not self._done:
            chunk = await self._inner.content.readany()
            if not chunk:
                self._done = True
                return self._finish()
            out = self._reshape(chunk)
            if out:
                return out
        return b""

    async def read(self) -> bytes:
        chunks = []
        while chunk := await self.readany():
            chunks.append(chunk)
        return b"".join(chunks)

    def iter_any(self) -> ReshapedBody:
        return self

    def __aiter__(self) -> ReshapedBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class ReshapedResponse:
    """An HTTP answer whose body is rewritten as it is read; status and headers are the inner ones."""

    __slots__ = ("_inner", "content")

    def __init__(self, inner: UpstreamResponse, reshape: Callable[[bytes], bytes], finish: Callable[[], bytes]) -> None:
        self._inner = inner
        self.content = ReshapedBody(inner, reshape, finish)

    @property
    def status(self) -> int:
        return self._inner.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._inner.headers

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        self._inner.release()

    def close(self) -> None:
        self._inner.close()
