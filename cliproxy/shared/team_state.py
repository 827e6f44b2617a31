"""Team spend in Redis: the `TeamPolicyState` every process of a cluster reads and adds to.

`team:<name>:<day>` hashes (requests, tokens, cost, unknown; kept 33 days) under the prefix.
`spent` (for `whoami` and the panel) reads the days of the period in one pipelined round trip; a
member's request does not call it: the admission script of `RedisKeyPolicyState` reads the same
hashes (`day_key`) in the request's one round trip. `add_usage` goes through the write-behind
queue. While Redis is down a team budget is a limit like any other: fail-closed refuses
(`LimitReached("unavailable")`), fail-open reads `local`, which every usage add also feeds.
"""

from __future__ import annotations

from cliproxy.policy.ledger import day_number, period_bounds
from cliproxy.policy.teams import LocalTeamPolicyState, TeamPolicyState, TeamSpend
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.counting import DownPolicy, add_day_usage
from cliproxy.shared.writes import WriteBehind


class RedisTeamPolicyState:
    def __init__(self, link: RedisLink, writes: WriteBehind, *, fail_open: bool) -> None:
        self.link = link
        self.writes = writes
        self.local = LocalTeamPolicyState()
        self.down = DownPolicy(fail_open, "team budgets are")

    def day_key(self, team: str, day: int) -> str:
        return self.link.key("team", team, str(day))

    async def spent(self, team: str, period: str, now: float) -> TeamSpend:
        link = self.link
        if link.up:
            first_day, _ = period_bounds(period, now)
            try:
                pipe = link.client.pipeline(transaction=False)
                for day in range(first_day, day_number(now) + 1):
                    pipe.hmget(self.day_key(team, day), "requests", "tokens", "cost", "unknown")
                rows = await pipe.execute()
            except link.errors as exc:
                link.failed(exc)
            else:
                totals = [sum(float(row[i]) if row[i] else 0.0 for row in rows) for i in range(4)]
                return TeamSpend(int(totals[0]), int(totals[1]), totals[2], int(totals[3]))
        self.down.fall_back()
        return await self.local.spent(team, period, now)

    def add_usage(self, team: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        self.local.add_usage(team, when, tokens=tokens, cost_usd=cost_usd)
        name = self.day_key(team, day_number(when))
        add_day_usage(self.writes, name, tokens=tokens, cost_usd=cost_usd)


def _check(state: RedisTeamPolicyState) -> TeamPolicyState:
    return state  # the type checker holds the implementation to the protocol
