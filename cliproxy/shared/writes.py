"""Writes that need not delay an answer: concurrency releases, usage adds, lease renewals.

They are queued as small functions that add commands to a pipeline; one flusher task sends
everything queued so far in one round trip as soon as the loop is free, so a request's answer never
waits for them and a burst of finished requests costs one pipeline, not one round trip each. While
Redis is down the queue is kept (bounded) and sent when it comes back; what overflows is dropped
with a warning, as a counter that cannot be written is better lost than blocking requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from cliproxy.shared.connection import PING_SECONDS, RedisLink

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000
Write = Callable[[Any], None]  # adds its commands to a redis-py pipeline


class WriteBehind:
    """The queue and its flusher (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._queue: list[Write] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def add(self, write: Write) -> None:
        queue = self._queue
        if len(queue) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.warning("shared state: write queue full while Redis is away; dropping counter updates")
            return
        queue.append(write)
        if len(queue) == 1:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cliproxy-redis-writes")

    async def stop(self) -> None:
        """Send what is queued (briefly, when Redis is up), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue and self.link.up:
            with contextlib.suppress(*self.link.errors):
                await self.flush()

    async def flush(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            return
        pipe = self.link.client.pipeline(transaction=False)
        for write in batch:
            write(pipe)
        try:
            await pipe.execute()
        except self.link.errors as exc:
            self.link.failed(exc)
            self._queue[:0] = batch[: MAX_QUEUED - len(self._queue)]
            raise
        self._dropped = 0

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.link.up:
                await asyncio.sleep(PING_SECONDS)
                self._wake.set()
                continue
            try:
                await self.flush()
            except self.link.errors:
                self._wake.set()
