"""Writes that need not delay an answer: concurrency releases, usage adds, lease renewals.

Two kinds, both sent by one flusher task, never on a request's latency path:

- counters (`incr`): usage adds and the cluster's management totals. They are summed in this
  process by (key, field) and sent at most every `FLUSH_SECONDS` as one `HINCRBY`/`HINCRBYFLOAT`
  per distinct field, so a thousand requests of one key cost a handful of commands, not thousands
  (a limit reads them at most that late, which only matters to a request racing a spent allowance);
- other writes (`add`): single commands, sent at the next
  turn of the loop (a released concurrency slot must free up at once); those that come while a flush
  is on its way go together in the next one.

While Redis is down both are kept (the counters merged, the writes bounded) and sent when it is back;
writes past `MAX_QUEUED` are dropped with a warning, as a counter that cannot be written is better
lost than blocking requests.
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
FLUSH_SECONDS = 0.05
Command = tuple[Any, ...]  # ("ZREM", key, member): a Redis command and its arguments


class WriteBehind:
    """The queue, the summed counters and their flusher (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._queue: list[Command] = []
        self._ints: dict[tuple[str, str], int] = {}
        self._floats: dict[tuple[str, str], float] = {}
        self._expiry: dict[str, int] = {}
        self._flushing: asyncio.Future[None] | None = None  # the flush running now
        self._again = False  # something urgent came while it ran: flush once more after it
        self._timer: asyncio.TimerHandle | None = None  # the next flush of the summed counters
        self._running = False
        self._kicked = False  # a flush is due at the next loop turn
        self._drains: list[Callable[[], None]] = []  # turn sums kept elsewhere into counters, per flush
        self._dirty = False  # those sums changed since the last flush
        self._dropped = 0

    def add(self, *command: Any) -> None:
        queue = self._queue
        if len(queue) >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1:
                log.warning("shared state: write queue full while Redis is away; dropping updates")
            return
        queue.append(command)
        if self._flushing is not None:
            self._again = True
        elif self._running and not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._kick)

    def before_flush(self, drain: Callable[[], None]) -> None:
        """Call `drain` first in every flush (an owner of its own sums adds them with `incr`)."""
        self._drains.append(drain)

    def touch(self) -> None:
        """Sums kept elsewhere changed: flush within `FLUSH_SECONDS`."""
        self._dirty = True
        if self._timer is None:
            self._arm(FLUSH_SECONDS)

    def incr(self, key: str, field: str, amount: int) -> None:
        counters = self._ints
        slot = (key, field)
        counters[slot] = counters.get(slot, 0) + amount
        if self._timer is None:
            self._arm(FLUSH_SECONDS)

    def incr_float(self, key: str, field: str, amount: float) -> None:
        counters = self._floats
        slot = (key, field)
        counters[slot] = counters.get(slot, 0.0) + amount
        if self._timer is None:
            self._arm(FLUSH_SECONDS)

    def expire(self, key: str, seconds: int) -> None:
        """Set `key`'s expiry with the next flush (counter hashes that must not live forever)."""
        self._expiry[key] = seconds

    async def start(self) -> None:
        self._running = True
        if self.pending:
            self._arm(0)

    async def stop(self) -> None:
        """Send what is queued (when Redis is up), then stop."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            with contextlib.suppress(asyncio.CancelledError, *self.link.errors):
                await self._flushing
        if self.link.up:
            with contextlib.suppress(*self.link.errors):
                await self.flush()

    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._queue or self._ints or self._floats or self._expiry)

    async def flush(self) -> None:
        self._dirty = False
        for drain in self._drains:
            drain()
        batch, self._queue = self._queue, []
        ints, self._ints = self._ints, {}
        floats, self._floats = self._floats, {}
        expiry, self._expiry = self._expiry, {}
        if not (batch or ints or floats or expiry):
            return
        commands: list[Command] = [("HINCRBY", key, field, amount) for (key, field), amount in ints.items()]
        commands += [("HINCRBYFLOAT", key, field, repr(value)) for (key, field), value in floats.items()]
        commands += [("EXPIRE", key, seconds) for key, seconds in expiry.items()]
        commands += batch
        try:
            await self.link.send(commands)
        except self.link.errors as exc:
            self.link.failed(exc)
            self._restore(batch, ints, floats, expiry)
            raise
        self._dropped = 0

    def _restore(
        self,
        batch: list[Command],
        ints: dict[tuple[str, str], int],
        floats: dict[tuple[str, str], float],
        expiry: dict[str, int],
    ) -> None:
        """Put an unsent flush back in front of what came meanwhile."""
        self._queue[:0] = batch[: max(0, MAX_QUEUED - len(self._queue))]
        for slot, amount in ints.items():
            self._ints[slot] = self._ints.get(slot, 0) + amount
        for slot, value in floats.items():
            self._floats[slot] = self._floats.get(slot, 0.0) + value
        for key, seconds in expiry.items():
            self._expiry.setdefault(key, seconds)

    def _arm(self, delay: float) -> None:
        if self._running and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._kick)

    def _kick(self) -> None:
        """Start a flush now, unless one runs (then it goes once more) or Redis is away (then later)."""
        self._kicked = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._running or not self.pending:
            return
        if self._flushing is not None:
            self._again = True
            return
        if not self.link.up:
            self._arm(PING_SECONDS)
            return
        self._flushing = asyncio.ensure_future(self._flush_all())

    async def _flush_all(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self.flush()
                except self.link.errors:
                    self._arm(PING_SECONDS)
                    return
                if not self._again:
                    return
        finally:
            self._flushing = None
            if self._dirty or self._ints or self._floats or self._expiry:
                self._arm(FLUSH_SECONDS)
