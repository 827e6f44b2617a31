"""Keep-alives: bytes that keep a silent connection from looking dead.

Some clients and the reverse proxies in front of them give up on a connection that has been silent
for a while; a model that thinks for a minute before its next token looks exactly like that.
- `streaming.keepalive-seconds`: an SSE comment while a stream is idle, written only between whole
  SSE frames (never inside one that the upstream split across reads); every SSE parser skips it.
- `nonstream-keepalive-interval`: a bare newline while a non-streaming answer is awaited. That
  commits a 200 before the answer is known, so it starts only once the wait outlasts one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

KEEPALIVE_FRAME = b": keep-alive\n\n"
NONSTREAM_KEEPALIVE = b"\n"  # leading whitespace, which every JSON parser skips
NONSTREAM_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-cache"}
_FRAME_ENDS = (b"\n\n", b"\r\n\r\n")


class KeepAlive:
    """Stands in for `response.write` and writes `KEEPALIVE_FRAME` after `every` idle seconds."""

    __slots__ = ("_at_frame_end", "_last", "_loop", "_task", "every", "response")

    def __init__(self, response: web.StreamResponse, every: float) -> None:
        self.response = response
        self.every = every
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._at_frame_end = True
        self._task = asyncio.create_task(self._run(), name="sse-keepalive")

    async def write(self, chunk: bytes) -> None:
        self._last = self._loop.time()
        self._at_frame_end = chunk.endswith(_FRAME_ENDS)
        await self.response.write(chunk)

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client left: the stream's own write reports it
            while True:
                idle = self._loop.time() - self._last
                if idle < self.every:
                    await asyncio.sleep(self.every - idle)
                    continue
                if self._at_frame_end:
                    await self.response.write(KEEPALIVE_FRAME)
                self._last = self._loop.time()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def hold_open(request: web.Request, answer: asyncio.Future[Any], every: float) -> web.StreamResponse | None:
    """Wait for `answer`; if it takes longer than `every` seconds, commit a 200 JSON response and
    write `NONSTREAM_KEEPALIVE` every `every` seconds until it is there. Returns that prepared
    response (the caller writes the answer into it), or None when the answer came within the first
    interval and nothing was written. A client that leaves cancels `answer`."""
    response = None
    try:
        done, _ = await asyncio.wait((answer,), timeout=every)
        if done:
            return None
        response = web.StreamResponse(status=200, headers=NONSTREAM_HEADERS)
        await response.prepare(request)
        while not done:
            await response.write(NONSTREAM_KEEPALIVE)
            done, _ = await asyncio.wait((answer,), timeout=every)
    except ConnectionError:
        pass  # the client left: a newline could not be written
    finally:
        if not answer.done():  # the client left (a failed write, or this handler was cancelled)
            answer.cancel()  # so does the upstream request
    return response
