"""`streaming.keepalive-seconds`: an SSE comment while a stream is idle (spec §6.3 "Keep-alives").

Some clients and the reverse proxies in front of them give up on a connection that has been silent
for a while; a model that thinks for a minute before its next token looks exactly like that. The
comment is written only between whole SSE frames (never inside one that the upstream split across
reads), and every SSE parser skips it.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

KEEPALIVE_FRAME = b": keep-alive\n\n"
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
