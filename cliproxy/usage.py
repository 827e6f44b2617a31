"""Per-request usage records: a bounded in-memory ring plus subscribers that may persist them.

The dispatcher records one `UsageRecord` when a request's outcome is consumed or closed. Token
counts come from the upstream's own usage fields, read by the upstream dialect's codec
(`cliproxy.translate.usage`); records keep each provider's own input count (Claude's leaves cache
reads and writes out). Subscribers (SQLite persistence, per-key budgets, metrics) get every record
synchronously and must not block.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """One upstream attempt of a request that did not commit an answer, and what came of it:
    `failover` (the request moved on), `cooldown` (the pair was cooled down), `timeout` (a bound
    of `upstream-timeouts` ran out, or the upstream said 408/504) or `error` (it ended the request)."""

    provider: str
    credential_id: str
    outcome: str


@dataclass(slots=True)
class UsageRecord:
    timestamp: float
    request_id: str
    client_key: str  # redacted key or the key object's name
    credential_id: str
    auth_index: str
    provider: str
    model: str  # upstream model
    alias: str  # client-visible model
    client_dialect: str
    upstream_dialect: str
    endpoint: str
    status: int
    failed: bool
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    stream: bool = False
    attempts: int = 1
    client_ip: str = ""
    x_forwarded_for: str = ""
    user_agent: str = ""
    reasoning_effort: str = ""
    service_tier: str = ""
    committed: bool = False  # an attempt committed an answer: the one with this record's credential
    failed_attempts: tuple[AttemptFailure, ...] = ()  # the attempts before it, or all of them


Subscriber = Callable[[UsageRecord], None]


class UsageStore:
    """The last `capacity` records, newest last; `subscribe` to see every record as it is added."""

    __slots__ = ("_records", "_subscribers", "in_flight", "total")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._records: deque[UsageRecord] = deque(maxlen=capacity)
        self._subscribers: list[Subscriber] = []
        self.total = 0
        self.in_flight = 0  # requests being routed or streamed: recorders not yet written

    def add(self, record: UsageRecord) -> None:
        self._records.append(record)
        self.total += 1
        for callback in self._subscribers:
            try:
                callback(record)
            except Exception:  # a broken subscriber must never break requests
                log.exception("usage subscriber failed")

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register `callback`; returns a function that unsubscribes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def __iter__(self) -> Iterator[UsageRecord]:
        return iter(tuple(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def recent(self, limit: int = 100) -> list[UsageRecord]:
        items = list(self._records)
        return items[-limit:] if limit else items
