"""Picking a credential (spec §5.7) and the cooldown book (spec §5.8).

`RoutingState` is the only mutable routing state. It hangs off the app (AppKey `ROUTING`), is keyed
by stable credential ids and route ids, and therefore survives snapshot swaps. Cooldowns are
deadlines compared against the injected clock: they clear themselves, no timers, no restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from cliproxy.routing.catalog import Candidate, Route

UNAUTHORIZED_COOLDOWN = 30 * 60.0
PAYMENT_COOLDOWN = 30 * 60.0
NOT_FOUND_COOLDOWN = 12 * 3600.0
DEFAULT_TRANSIENT_COOLDOWN = 60.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30 * 60.0
MAX_CURSORS = 4096

QUOTA_REASONS = frozenset({"quota"})


@dataclass(slots=True)
class Cooldown:
    until: float  # clock value when the (credential, model) becomes usable again
    reason: str  # "quota", "unauthorized", "payment_required", "not_found", "transient"
    status: int
    level: int = 0  # 429 backoff level: 1 s · 2**level


@dataclass(slots=True)
class _Smooth:
    """nginx smooth weighted round-robin state for one route."""

    signature: tuple[tuple[str, int], ...]
    current: dict[str, int]


class RoutingState:
    """Cursors, weighted-round-robin credit and cooldowns, keyed by stable ids."""

    __slots__ = ("clock", "cooldowns", "cursors", "derived", "pool_cursors", "smooth")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.cooldowns: dict[tuple[str, str], Cooldown] = {}
        self.cursors: dict[str, int] = {}
        self.pool_cursors: dict[tuple[str, str], int] = {}
        self.smooth: dict[str, _Smooth] = {}
        self.derived: dict[str, Any] = {}  # per-snapshot compiled data (payload rules), keyed by config

    # -- availability ---------------------------------------------------------------------------

    def remaining(self, cred_id: str, model: str, now: float) -> float:
        """Seconds until the (credential, model) is usable; 0 when it is usable now."""
        entry = self.cooldowns.get((cred_id, model))
        if entry is None or entry.until <= now:
            return 0.0
        return entry.until - now

    def earliest(self, candidates: Collection[Candidate]) -> float:
        """Seconds until the first of these candidates leaves its cooldown (0 if one is usable)."""
        now = self.clock()
        waits = [self.remaining(c.credential.id, c.model_key, now) for c in candidates]
        return min(waits) if waits else 0.0

    def listable(self, route: Route) -> bool:
        """Spec §5.5: hidden once no candidate is usable and one is suspended for a non-quota reason."""
        if not self.cooldowns:
            return True
        now = self.clock()
        suspended = False
        for cand in route.candidates:
            entry = self.cooldowns.get((cand.credential.id, cand.model_key))
            if entry is None or entry.until <= now:
                return True
            if entry.reason not in QUOTA_REASONS:
                suspended = True
        return not suspended

    # -- picking --------------------------------------------------------------------------------

    def pick(self, route: Route, strategy: str, tried: Collection[str] = ()) -> Candidate | None:
        """The next candidate for this route, or None when every usable one was tried or is cooling."""
        weighted = strategy == "weighted-round-robin"
        available: tuple[Candidate, ...] | list[Candidate] = ()
        if not tried and not self.cooldowns and not weighted:
            available = route.tiers[0]
        else:
            now = self.clock()
            cooldowns = self.cooldowns
            for tier in route.tiers:
                available = [
                    c
                    for c in tier
                    if c.credential.id not in tried
                    and not (weighted and c.credential.weight <= 0)
                    and ((entry := cooldowns.get((c.credential.id, c.model_key))) is None or entry.until <= now)
                ]
                if available:
                    break
            if not available:
                return None
        if len(available) == 1 or strategy == "fill-first":
            return available[0]
        if weighted:
            return self._smooth_pick(route, available)
        key = route.model
        cursor = self.cursors.get(key, 0)
        if cursor == 0 and len(self.cursors) >= MAX_CURSORS:
            self.cursors.clear()
        self.cursors[key] = cursor + 1
        return available[cursor % len(available)]

    def _smooth_pick(self, route: Route, available: list[Candidate] | tuple[Candidate, ...]) -> Candidate:
        signature = tuple((c.credential.id, c.credential.weight) for tier in route.tiers for c in tier)
        state = self.smooth.get(route.model)
        if state is None or state.signature != signature:
            state = self.smooth[route.model] = _Smooth(signature, {})
        current = state.current
        total = 0
        best: Candidate | None = None
        best_value = 0
        for cand in available:
            weight = cand.credential.weight
            value = current.get(cand.credential.id, 0) + weight
            current[cand.credential.id] = value
            total += weight
            if best is None or value > best_value:
                best, best_value = cand, value
        assert best is not None
        current[best.credential.id] = best_value - total
        return best

    def pool_name(self, cand: Candidate, attempt: int = 0) -> str:
        """Alias pools: round-robin over the upstream names; `attempt` moves to the next name."""
        names = cand.offer.upstream
        if len(names) == 1:
            return names[0]
        key = (cand.credential.id, cand.offer.id)
        if attempt == 0:
            cursor = self.pool_cursors.get(key, 0)
            self.pool_cursors[key] = cursor + 1
        else:
            cursor = self.pool_cursors.get(key, 1) - 1 + attempt
        return names[cursor % len(names)]

    # -- outcomes -------------------------------------------------------------------------------

    def success(self, cred_id: str, model: str) -> None:
        if self.cooldowns:
            self.cooldowns.pop((cred_id, model), None)

    def failure(
        self,
        cred_id: str,
        model: str,
        status: int,
        *,
        retry_after: float | None = None,
        transient_seconds: int = 0,
        not_found: bool = False,
    ) -> float:
        """Record a failed attempt; returns the cooldown applied in seconds (0 = none)."""
        now = self.clock()
        key = (cred_id, model)
        previous = self.cooldowns.get(key)
        if status == 429:
            if retry_after is not None and retry_after > 0:
                level = previous.level if previous is not None else 0
                seconds = retry_after
            else:
                if previous is not None and previous.until > now and previous.reason == "quota":
                    return previous.until - now  # one advance per open window
                level = previous.level + 1 if previous is not None and previous.reason == "quota" else 0
                seconds = min(BACKOFF_BASE * (2**level), BACKOFF_CAP)
            self.cooldowns[key] = Cooldown(now + seconds, "quota", status, level)
            return seconds
        if status == 401:
            seconds, reason = UNAUTHORIZED_COOLDOWN, "unauthorized"
        elif status in (402, 403):
            seconds, reason = PAYMENT_COOLDOWN, "payment_required"
        elif status == 404 or not_found:
            seconds, reason = NOT_FOUND_COOLDOWN, "not_found"
        else:
            if transient_seconds < 0:
                return 0.0
            seconds, reason = float(transient_seconds or DEFAULT_TRANSIENT_COOLDOWN), "transient"
        self.cooldowns[key] = Cooldown(now + seconds, reason, status)
        return seconds

    def clear(self, cred_id: str | None = None) -> None:
        """Drop cooldowns by hand (one credential, or all): `reset-quota` in management."""
        if cred_id is None:
            self.cooldowns.clear()
        else:
            for key in [k for k in self.cooldowns if k[0] == cred_id]:
                del self.cooldowns[key]
