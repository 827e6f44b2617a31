"""Picking a credential for a route, the way CLIProxyAPI's `routing.strategy` does.

- `round-robin` (default): a cursor per route; each pick is `available[cursor++ % n]`. At most
  `MAX_CURSORS` cursors are kept; the map starts over when it would grow past that.
- `fill-first`: always the first available credential of the highest-priority tier.
- `weighted-round-robin`: nginx's smooth weighted round robin over credentials with weight > 0; its
  state starts over when the weight vector changes.

Availability comes from `CredentialHealth`; the cursors are this process's own and are keyed by
route and stable credential ids, so they survive snapshot swaps.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.health import CredentialHealth

MAX_CURSORS = 4096


@dataclass(slots=True)
class _Smooth:
    """Smooth weighted round-robin credit for one route."""

    signature: tuple[tuple[str, int], ...]
    current: dict[str, int]


class Scheduler:
    """Cursors and weighted-round-robin credit; asks `health` which candidates are usable."""

    __slots__ = ("cursors", "health", "pool_cursors", "smooth")

    def __init__(self, health: CredentialHealth) -> None:
        self.health = health
        self.cursors: dict[str, int] = {}
        self.pool_cursors: dict[tuple[str, str], int] = {}
        self.smooth: dict[str, _Smooth] = {}

    def pick(self, route: Route, strategy: str, tried: Collection[str] = ()) -> Candidate | None:
        """The next candidate for this route, or None when every usable one was tried or is cooling."""
        weighted = strategy == "weighted-round-robin"
        health = self.health
        available: tuple[Candidate, ...] | list[Candidate] = ()
        if not tried and not weighted and not health.cooling():
            available = route.tiers[0]
        else:
            now = health.clock()
            remaining = health.remaining
            for tier in route.tiers:
                available = [
                    c
                    for c in tier
                    if c.credential.id not in tried
                    and not (weighted and c.credential.weight <= 0)
                    and not remaining(c.credential.id, c.model_key, now)
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
