"""`/metrics` for a whole cluster: every process publishes its request tallies to Redis, a scrape sums them.

Each process writes `metrics:<node>` (its tallies as JSON) every `PUBLISH_SECONDS`, expiring after
`EXPIRE_SECONDS`; a scrape on any process first publishes its own, then sums every live process's
(`Metrics.render_sum`). A process that died drops out of the sum once its entry expires, which a
Prometheus `rate()` sees as a counter reset, as it would for a restarted single server. Process
figures (CPU, memory) stay per process; cooldown gauges already come from the shared health.
While Redis is away a scrape shows this process alone.
"""

from __future__ import annotations

import asyncio
import contextlib

from cliproxy import jsonio
from cliproxy.metrics.registry import Metrics
from cliproxy.shared.connection import RedisLink

PUBLISH_SECONDS = 5.0
EXPIRE_SECONDS = 30
SCAN_BATCH = 100


class ClusterMetrics:
    def __init__(self, link: RedisLink, metrics: Metrics) -> None:
        self.link = link
        self.metrics = metrics
        self.name = link.key("metrics", link.node)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cliproxy-redis-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.link.up:  # gone from the sum at once, not after the expiry
            with contextlib.suppress(*self.link.errors):
                await self.link.client.delete(self.name)

    async def publish(self) -> None:
        await self.link.client.set(self.name, jsonio.dumps(self.metrics.tally_values()), ex=EXPIRE_SECONDS)

    async def render(self) -> bytes:
        link = self.link
        if not link.up:
            return self.metrics.render()
        try:
            await self.publish()
            names = [name async for name in link.client.scan_iter(match=link.key("metrics", "*"), count=SCAN_BATCH)]
            values = await link.client.mget(names) if names else []
        except link.errors as exc:
            link.failed(exc)
            return self.metrics.render()
        return self.metrics.render_sum(jsonio.loads(value) for value in values if value)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_SECONDS)
            if self.metrics.enabled and self.link.up:
                with contextlib.suppress(*self.link.errors):
                    await self.publish()
