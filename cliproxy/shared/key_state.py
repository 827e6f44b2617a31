"""Per-key counters in Redis: the `KeyPolicyState` that holds across processes and hosts.

`admit` is one `EVALSHA` of `ADMIT` (sent with the other calls of the same loop turn, see
`ScriptCalls`): it checks a member key's team budget and the team's price rule, then today's
tokens, the budget period's spend, the price rule, the rate window and the in-flight count in the
same order as the in-process state, and takes the request's place in the window and among the
requests in flight, atomically. So a member key of a budgeted team costs one round trip too, not
one for the team's spend and one for the key. A key whose policy sets no limit (a `models` scope
alone) and that belongs to no budgeted team never reaches Redis. Releases and usage adds go through the write-behind
queue, after the answer.

Keys (under the prefix): `rate:<digest>` (sorted set of admission times, the last minute),
`inflight:<digest>` (sorted set of leases: member `<node>:<n>`, score = lease end), and
`usage:<key id>:<day>` (hash: requests, tokens, cost, unknown; kept 33 days). A lease runs
`LEASE_SECONDS` and each process renews its own (and the set's expiry) every `LEASE_SECONDS / 3`, so
the slots of a process that died free themselves within `LEASE_SECONDS` instead of leaking.

While Redis is down, `on-redis-down: fail-closed` refuses a limited key (`LimitReached("unavailable")`,
a 503) and `fail-open` counts in this process (`local`, also fed every usage add so it is current,
reading team spend from the team state's own `local`), with a warning at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time

from cliproxy.accounts.model import TeamRules
from cliproxy.policy.ledger import DAY, day_number, period_bounds
from cliproxy.policy.state import (
    RATE_WINDOW_SECONDS,
    KeyPolicyState,
    KeyRef,
    KeyUsage,
    LimitReached,
    Limits,
    LocalKeyPolicyState,
    Release,
)
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.counting import DownPolicy, add_day_usage
from cliproxy.shared.script_calls import ScriptCalls
from cliproxy.shared.team_state import RedisTeamPolicyState
from cliproxy.shared.writes import WriteBehind

LEASE_SECONDS = 30.0

# KEYS: rate, inflight, usage today, the key's budget days (ARGV[9] of them), the team's days;
# ARGV[10..13] (the team's USD budget, credits, credits per USD, unknown price) only for a member key.
# The team check is the same arithmetic as `budget_refusal` (credits first, then USD), on the same
# doubles; the spent figure goes back with 17 digits so this process rebuilds the same message.
ADMIT = """
local now = tonumber(ARGV[1])
local tokens_limit = tonumber(ARGV[2])
local budget_limit = tonumber(ARGV[3])
local rpm = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local budget_days = tonumber(ARGV[9])
if ARGV[10] then
  local team_usd = tonumber(ARGV[10])
  local team_credits = tonumber(ARGV[11])
  local spent = 0
  for i = 4 + budget_days, #KEYS do spent = spent + tonumber(redis.call('HGET', KEYS[i], 'cost') or '0') end
  if (team_credits >= 0 and spent * tonumber(ARGV[12]) >= team_credits) or (team_usd >= 0 and spent >= team_usd) then
    return {6, string.format('%.17g', spent)}
  end
  if ARGV[13] == '1' then return {7, '0'} end
end
if tokens_limit >= 0 then
  local used = tonumber(redis.call('HGET', KEYS[3], 'tokens') or '0')
  if used >= tokens_limit then return {1, tostring(used)} end
end
if budget_limit >= 0 then
  local spent = 0
  for i = 4, 3 + budget_days do spent = spent + tonumber(redis.call('HGET', KEYS[i], 'cost') or '0') end
  if spent >= budget_limit then return {2, tostring(spent)} end
end
if ARGV[4] == '1' then return {3, '0'} end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {4, oldest[2]}
  end
end
if cap >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local held = redis.call('ZCARD', KEYS[2])
  if held >= cap then return {5, tostring(held)} end
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[7])
  redis.call('EXPIRE', KEYS[1], 61)
end
if cap >= 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[8]), ARGV[7])
  redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[8])) + 1)
end
return {0, '0'}
"""


class RedisKeyPolicyState:
    """`KeyPolicyState` in Redis, with `local` as the fail-open fallback (see the module docstring)."""

    def __init__(
        self,
        link: RedisLink,
        writes: WriteBehind,
        *,
        fail_open: bool,
        teams: RedisTeamPolicyState | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.link = link
        self.lease_seconds = lease_seconds
        self.writes = writes
        self.teams = teams if teams is not None else RedisTeamPolicyState(link, writes, fail_open=fail_open)
        self.local = LocalKeyPolicyState(self.teams.local)
        self.down = DownPolicy(fail_open, "per-key limits are")
        self._admit = ScriptCalls(link, ADMIT)
        self._seq = itertools.count()
        self._leases: dict[str, tuple[str, ...]] = {}  # member → (inflight key,) while held here
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._renewer = asyncio.create_task(self._renew(), name="cliproxy-redis-leases")

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    def _usage_key(self, key_id: str, day: int) -> str:
        return self.link.key("usage", key_id, str(day))

    def _fall_back(self, counted: bool, team: TeamRules | None) -> None:
        """Redis is down: refuse (fail-closed) or warn for what this request is checked against."""
        if team is not None:
            self.teams.down.fall_back()
        if counted:
            self.down.fall_back()

    async def admit(self, key: KeyRef, limits: Limits, now: float) -> Release | None:
        rpm, cap = limits.requests_per_minute, limits.max_concurrent
        team = limits.team
        counted = not (limits.tokens_per_day is None and limits.budget_usd is None and rpm is None and cap is None)
        if not counted and team is None:
            return None  # nothing to count: no round trip
        link = self.link
        if not link.up:
            self._fall_back(counted, team)
            return await self.local.admit(key, limits, now)
        today = day_number(now)
        digest = key.digest.hex()
        keys = [link.key("rate", digest), link.key("inflight", digest), self._usage_key(key.key_id, today)]
        if limits.budget_usd is not None:
            first_day, _ = period_bounds(limits.budget_period, now)
            keys.extend(self._usage_key(key.key_id, day) for day in range(first_day, today + 1))
        budget_days = len(keys) - 3
        if team is not None:
            first_day, _ = period_bounds(team.budget_period, now)
            keys.extend(self.teams.day_key(team.name, day) for day in range(first_day, today + 1))
        member = f"{link.node}:{next(self._seq)}"
        args = [
            repr(now),
            -1 if limits.tokens_per_day is None else limits.tokens_per_day,
            -1 if limits.budget_usd is None else repr(limits.budget_usd),
            1 if limits.price_unknown else 0,
            -1 if rpm is None else rpm,
            -1 if cap is None else cap,
            member,
            repr(self.lease_seconds),
            budget_days,
        ]
        if team is not None:  # only a member key of a budgeted team sends the team's figures
            args += [
                -1 if team.budget_usd is None else repr(team.budget_usd),
                -1 if team.budget_credits is None else repr(team.budget_credits),
                repr(team.credits_per_usd),
                1 if limits.team_price_unknown else 0,
            ]
        try:
            code, figure = await self._admit.call(keys, args)
        except link.errors as exc:
            link.failed(exc)
            self._fall_back(counted, team)
            return await self.local.admit(key, limits, now)
        if code:
            raise _reached(int(code), float(figure), limits, now)
        if cap is None:
            return None
        inflight = keys[1]
        self._leases[member] = (inflight,)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                del self._leases[member]
                self.writes.add("ZREM", inflight, member)

        return release

    def add_usage(self, key_id: str, when: float, *, tokens: int, cost_usd: float | None) -> None:
        self.local.add_usage(key_id, when, tokens=tokens, cost_usd=cost_usd)
        name = self._usage_key(key_id, day_number(when))
        add_day_usage(self.writes, name, tokens=tokens, cost_usd=cost_usd)

    async def usage(self, key: KeyRef, period: str, now: float) -> KeyUsage:
        link = self.link
        if not link.up:
            return await self.local.usage(key, period, now)
        today = day_number(now)
        first_day, _ = period_bounds(period, now)
        digest = key.digest.hex()
        try:
            pipe = link.client.pipeline(transaction=False)
            for day in range(first_day, today + 1):
                pipe.hmget(self._usage_key(key.key_id, day), "requests", "tokens", "cost", "unknown")
            pipe.zcount(link.key("rate", digest), now - RATE_WINDOW_SECONDS, "+inf")
            pipe.zcount(link.key("inflight", digest), now, "+inf")
            *days, recent, in_flight = await pipe.execute()
        except link.errors as exc:
            link.failed(exc)
            return await self.local.usage(key, period, now)
        totals = [[_number(v) for v in row] for row in days]
        return KeyUsage(
            requests_today=int(totals[-1][0]),
            tokens_today=int(totals[-1][1]),
            requests_this_period=int(sum(row[0] for row in totals)),
            tokens_this_period=int(sum(row[1] for row in totals)),
            cost_usd_this_period=sum(row[2] for row in totals),
            unknown_price_requests_this_period=int(sum(row[3] for row in totals)),
            requests_last_minute=int(recent),
            in_flight=int(in_flight),
        )

    async def _renew(self) -> None:
        """Push the end of this process's leases forward while their requests run."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._leases or not self.link.up:
                continue
            until = repr(time.time() + self.lease_seconds)
            keys: set[str] = set()
            for member, (inflight,) in list(self._leases.items()):
                self.writes.add("ZADD", inflight, "XX", until, member)
                keys.add(inflight)
            # the set itself expires a little after the last lease admission wrote: without pushing
            # that forward too, a key that admits nothing new for that long loses a running slot
            lifetime = math.ceil(self.lease_seconds) + 1
            for inflight in keys:
                self.writes.add("EXPIRE", inflight, lifetime)


KINDS = {1: "tokens", 2: "budget", 3: "price", 4: "rate", 5: "concurrency", 6: "team_budget", 7: "team_price"}


def _number(value: bytes | None) -> float:
    return float(value) if value else 0.0


def _reached(code: int, figure: float, limits: Limits, now: float) -> LimitReached:
    kind = KINDS[code]
    if kind == "team_budget":
        return LimitReached("team_budget", used=figure)
    if kind == "team_price":
        return LimitReached("team_price")
    if kind == "tokens":
        resets = (day_number(now) + 1) * DAY
        return LimitReached("tokens", used=figure, limit=limits.tokens_per_day or 0, resets_at=resets)
    if kind == "budget":
        _, resets_at = period_bounds(limits.budget_period, now)
        return LimitReached("budget", used=figure, limit=limits.budget_usd or 0, resets_at=resets_at)
    if kind == "price":
        return LimitReached("price")
    if kind == "rate":
        wait = max(1, math.ceil(figure + RATE_WINDOW_SECONDS - now))
        return LimitReached("rate", limit=limits.requests_per_minute or 0, retry_after=wait)
    return LimitReached("concurrency", used=figure, limit=limits.max_concurrent or 0, retry_after=1)


def _check(state: RedisKeyPolicyState) -> KeyPolicyState:
    return state  # the type checker holds the implementation to the protocol
