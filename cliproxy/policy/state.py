"""The counters per-key limits read: rate windows, in-flight counts, daily tokens and spend.

`KeyPolicyState` is the seam: `admit` checks every limit of one request and takes its place in the
rate window and the concurrency count in one step (one round trip, for an implementation that keeps
the counters in a shared store), `add_usage` counts a finished request, `usage` reads a key's
figures for `whoami` and management. `LocalKeyPolicyState` keeps them in this process: the rate
windows and in-flight counts by key digest, the daily totals in a `UsageLedger`.

A member key of a budgeted team is checked against its team's spend first, in the same `admit`
(`Limits.team`), so that a shared store answers both in that one round trip; the state reads the
spend from the `TeamPolicyState` it was built with, the one `KeyPolicy` shows in `whoami`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cliproxy.accounts.model import TeamRules
from cliproxy.policy.ledger import DAY, UsageLedger, day_number, period_bounds
from cliproxy.policy.teams import LocalTeamPolicyState, TeamPolicyState, budget_refusal

RATE_WINDOW_SECONDS = 60.0

Release = Callable[[], None]
# "unavailable": the shared counters cannot be reached and the config says to refuse (fail-closed)
# "team_budget", "team_price": the member key's team refuses (its budget is spent, or the model is unpriced)
LimitKind = Literal["team_budget", "team_price", "tokens", "budget", "price", "rate", "concurrency", "unavailable"]


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A client key as the counters know it: the digest of the key, and its id in usage records."""

    digest: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one request is checked against (None: no such limit)."""

    tokens_per_day: int | None = None
    budget_usd: float | None = None
    budget_period: str = "month"
    requests_per_minute: int | None = None
    max_concurrent: int | None = None
    price_unknown: bool = False  # refuse once the allowances pass: a budgeted key on an unpriced model
    team: TeamRules | None = None  # a budgeted team's member key: the team's spend is checked first
    team_price_unknown: bool = False  # refuse once the team's budget passes: the model is unpriced


class LimitReached(Exception):
    """Which limit refused a request, with the figures its message needs."""

    def __init__(
        self,
        kind: LimitKind,
        *,
        used: float = 0,
        limit: float = 0,
        retry_after: int | None = None,
        resets_at: float = 0,
    ) -> None:
        super().__init__(kind)
        self.kind: LimitKind = kind
        self.used = used
        self.limit = limit
        self.retry_after = retry_after
        self.resets_at = resets_at


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """A key's figures at one moment."""

    requests_today: int
    tokens_today: int
    requests_this_period: int
    tokens_this_period: int
    cost_usd_this_period: float
    unknown_price_requests_this_period: int
    requests_last_minute: int
    in_flight: int


class KeyPolicyState(Protocol):
    async def admit(self, key: KeyRef, limits: Limits, now: float) -> Release | None:
        """Check `limits` in order (the team's budget and price, then the key's tokens, budget, price,
        rate, concurrency) and count the request in the rate window and, with a concurrency limit, in
        flight. Returns the release of its concurrency
        slot (call it exactly once), or None. Raises `LimitReached`."""
        ...

    def add_usage(self, key_id: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        """Count one finished request (`cost_usd` None: the model's price is unknown)."""
        ...

    async def usage(self, key: KeyRef, period: str, now: float) -> KeyUsage: ...


@dataclass(slots=True)
class _Live:
    """Per key digest: admitted request times of the last minute, and requests in flight."""

    window: deque[float] = field(default_factory=deque)
    in_flight: int = 0

    def recent(self, now: float) -> int:
        window = self.window
        horizon = now - RATE_WINDOW_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        return len(window)


class LocalKeyPolicyState:
    """The counters in this process; they survive reloads (keyed by key digest and key id)."""

    def __init__(self, teams: TeamPolicyState | None = None) -> None:
        self.live: dict[bytes, _Live] = {}
        self.ledger = UsageLedger()
        self.teams: TeamPolicyState = teams if teams is not None else LocalTeamPolicyState()

    async def admit(self, key: KeyRef, limits: Limits, now: float) -> Release | None:
        team = limits.team
        if team is not None:
            spend = await self.teams.spent(team.name, team.budget_period, now)
            if budget_refusal(team, spend, now) is not None:
                raise LimitReached("team_budget", used=spend.cost_usd)
            if limits.team_price_unknown:
                raise LimitReached("team_price")
        ledger = self.ledger
        if limits.tokens_per_day is not None:
            used = ledger.tokens_on(key.key_id, day_number(now))
            if used >= limits.tokens_per_day:
                resets = (day_number(now) + 1) * DAY
                raise LimitReached("tokens", used=used, limit=limits.tokens_per_day, resets_at=resets)
        if limits.budget_usd is not None:
            first_day, resets_at = period_bounds(limits.budget_period, now)
            spent = ledger.since(key.key_id, first_day).cost_usd
            if spent >= limits.budget_usd:
                raise LimitReached("budget", used=spent, limit=limits.budget_usd, resets_at=resets_at)
        if limits.price_unknown:
            raise LimitReached("price")
        live = self.live.get(key.digest)
        if live is None:
            live = self.live[key.digest] = _Live()
        rpm = limits.requests_per_minute
        if rpm is not None and live.recent(now) >= rpm:
            wait = max(1, math.ceil(live.window[0] + RATE_WINDOW_SECONDS - now))
            raise LimitReached("rate", limit=rpm, retry_after=wait)
        cap = limits.max_concurrent
        if cap is not None and live.in_flight >= cap:
            raise LimitReached("concurrency", used=live.in_flight, limit=cap, retry_after=1)
        if rpm is not None:
            live.window.append(now)
        if cap is None:
            return None
        live.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                live.in_flight -= 1

        return release

    def add_usage(self, key_id: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        self.ledger.add_request(key_id, when, tokens=tokens, cost_usd=cost_usd)

    async def usage(self, key: KeyRef, period: str, now: float) -> KeyUsage:
        ledger = self.ledger
        today = day_number(now)
        first_day, _ = period_bounds(period, now)
        in_period = ledger.since(key.key_id, first_day)
        live = self.live.get(key.digest)
        return KeyUsage(
            requests_today=ledger.since(key.key_id, today).requests,
            tokens_today=ledger.tokens_on(key.key_id, today),
            requests_this_period=in_period.requests,
            tokens_this_period=in_period.tokens,
            cost_usd_this_period=in_period.cost_usd,
            unknown_price_requests_this_period=in_period.unknown_cost,
            requests_last_minute=live.recent(now) if live is not None else 0,
            in_flight=live.in_flight if live is not None else 0,
        )
