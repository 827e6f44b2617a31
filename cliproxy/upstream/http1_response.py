"""The answer side of the lean HTTP/1.1 client: a `Response` whose `Body` streams in as it arrives.

The connection feeds the body and is told when to stop reading the socket (too much buffered) and
when the answer is done with (`release` keeps the connection for reuse, `close` drops it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from multidict import CIMultiDictProxy

PAUSE_AT_BYTES = 256 * 1024  # buffered body bytes at which we stop reading the upstream socket


class ConnectionControl(Protocol):
    """What a body asks of the connection it arrives on."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def finish(self, resp: Response) -> None: ...
    def drop(self) -> None: ...


class Body:
    """The body of one response as it arrives; `Response.content` (aiohttp's name for it)."""

    __slots__ = ("_buffered", "_chunks", "_conn", "_eof", "_exc", "_waiter")

    def __init__(self, conn: ConnectionControl) -> None:
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > PAUSE_AT_BYTES:
            self._conn.pause()
        self._wake()

    def _end(self, exc: BaseException | None = None) -> None:
        if not self._eof:
            self._eof = True
            self._exc = exc
            self._wake()

    async def _wait(self) -> None:
        self._conn.resume()
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        await waiter

    async def readany(self) -> bytes:
        """The bytes that arrived since the last call (waiting for some); b"" at the end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                return data
            if self._eof:
                if self._exc is not None:
                    raise self._exc
                return b""
            await self._wait()

    async def read(self) -> bytes:
        """The whole body."""
        while not self._eof:
            await self._wait()
        if self._exc is not None:
            self._chunks.clear()  # useless now, and the raise ties this body into a traceback cycle
            self._buffered = 0
            raise self._exc
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return data

    def iter_any(self) -> Body:
        """Iterate over `readany` results (a plain iterator: an abandoned async generator would
        cost a finalizer task)."""
        return self

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.readany()
        if not chunk:
            raise StopAsyncIteration
        return chunk


class Response:
    """Status and headers of an upstream answer; the body streams in through `content`."""

    __slots__ = ("_conn", "content", "headers", "status", "version")

    def __init__(self, conn: ConnectionControl, status: int, headers: CIMultiDictProxy[str], version: str) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.version = version
        self.content = Body(conn)

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        """Done with this answer: the connection goes back to the pool if it was read to its end."""
        self._conn.finish(self)

    def close(self) -> None:
        """Drop the connection (the upstream sees it close): the client went away or we gave up."""
        self._conn.drop()
