"""Per-key usage per UTC day, and the calendar of budget periods.

The ledger is what daily token allowances and budgets are checked against. It is filled from the
usage database at startup and kept current by every usage record, so it survives restarts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

DAY = 86_400
LEDGER_DAYS = 32  # enough for the longest budget period (a month)


def day_number(ts: float) -> int:
    """Days since the epoch (UTC): the ledger's bucket for a timestamp."""
    return int(ts // DAY)


def period_bounds(period: str, now: float) -> tuple[int, float]:
    """(first day number of the current `period`, epoch when the next one starts), in UTC."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if period == "day":
        start, end = today, today + dt.timedelta(days=1)
    elif period == "week":  # ISO weeks start on Monday
        start = today - dt.timedelta(days=today.weekday())
        end = start + dt.timedelta(days=7)
    else:
        start = today.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    epoch = dt.date(1970, 1, 1)
    resets = dt.datetime.combine(end, dt.time(), dt.UTC).timestamp()
    return (start - epoch).days, resets


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class DayUsage:
    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0  # requests that used tokens on a model without a known price


@dataclass
class UsageLedger:
    """Per key id (the name, or the redacted key): usage per UTC day for the last `LEDGER_DAYS`."""

    days: dict[str, dict[int, DayUsage]] = field(default_factory=dict)

    def add(self, key_id: str, day: int, *, requests: int, tokens: int, cost_usd: float, unknown: int) -> None:
        bucket = self.days.setdefault(key_id, {})
        usage = bucket.get(day)
        if usage is None:
            usage = bucket[day] = DayUsage()
            for old in [d for d in bucket if d <= day - LEDGER_DAYS]:
                del bucket[old]
        usage.requests += requests
        usage.tokens += tokens
        usage.cost_usd += cost_usd
        usage.unknown_cost += unknown

    def add_request(self, key_id: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        """One request ended at `when`; a cost of None is a model without a known price."""
        self.add(
            key_id,
            day_number(when),
            requests=1,
            tokens=tokens,
            cost_usd=cost_usd or 0.0,
            unknown=1 if cost_usd is None else 0,
        )

    def tokens_on(self, key_id: str, day: int) -> int:
        usage = self.days.get(key_id, {}).get(day)
        return usage.tokens if usage is not None else 0

    def since(self, key_id: str, first_day: int) -> DayUsage:
        """Totals from `first_day` (inclusive) to now."""
        total = DayUsage()
        for day, usage in self.days.get(key_id, {}).items():
            if day >= first_day:
                total.requests += usage.requests
                total.tokens += usage.tokens
                total.cost_usd += usage.cost_usd
                total.unknown_cost += usage.unknown_cost
        return total
