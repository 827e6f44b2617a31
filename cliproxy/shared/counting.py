"""What every shared counter follows: how long usage hashes live, and what limited requests get while
Redis is down (`on-redis-down`): a refusal, or counting in this process with a warning."""

from __future__ import annotations

import logging
import math
import time

from cliproxy.policy.ledger import DAY
from cliproxy.policy.state import LimitReached
from cliproxy.shared.writes import WriteBehind

log = logging.getLogger(__name__)

USAGE_TTL_SECONDS = 33 * DAY
WARN_EVERY_SECONDS = 60.0


class DownPolicy:
    """What limited requests get while Redis is down: a refusal, or in-process counting with a warning."""

    def __init__(self, fail_open: bool, what: str) -> None:
        self.fail_open = fail_open
        self.what = what
        self._warned = -math.inf

    def fall_back(self) -> None:
        """Raise the 503 (fail-closed), or warn at most once a minute (fail-open)."""
        if not self.fail_open:
            raise LimitReached("unavailable")
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            log.warning("shared state: Redis is down; %s counted in this process only (fail-open)", self.what)


def add_day_usage(writes: WriteBehind, name: str, *, tokens: int, cost_usd: float | None) -> None:
    """Count one request into the day hash `name` (a key's or a team's), sent after the answer."""
    writes.incr(name, "requests", 1)
    if tokens:
        writes.incr(name, "tokens", tokens)
    if cost_usd:
        writes.incr_float(name, "cost", cost_usd)
    elif cost_usd is None:
        writes.incr(name, "unknown", 1)
    writes.expire(name, USAGE_TTL_SECONDS)
