"""A member key of a budgeted team admitted in one Redis script call refuses exactly as in one process:
the team's budget (USD or credits) and its unknown-price rule before the key's own limits, with the
same status, code and message, and a refused request takes no place in the key's rate window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from cliproxy.accounts.model import TeamRules
from cliproxy.clientkeys import ClientIdentity
from cliproxy.config.model import ClientKey
from cliproxy.policy.limits import KeyPolicy, PolicyRefusal
from cliproxy.policy.state import LocalKeyPolicyState
from cliproxy.policy.teams import LocalTeamPolicyState, TeamPolicyState
from cliproxy.pricing import Prices
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.key_state import RedisKeyPolicyState
from cliproxy.shared.team_state import RedisTeamPolicyState
from cliproxy.shared.writes import WriteBehind
from tests.shared.conftest import RedisServer

PRICED = "gpt-4o-mini"
UNPRICED = "house-model-without-price"
NOW = time.time()


@dataclass
class Backend:
    policy: KeyPolicy
    teams: TeamPolicyState
    settle: Callable[[], Awaitable[None]]  # the usage adds have reached the counters


async def settled() -> None:
    return None


@pytest.fixture(params=["local", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "local":
        teams = LocalTeamPolicyState()
        yield Backend(KeyPolicy(LocalKeyPolicyState(teams), Prices(), teams), teams, settled)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    link = RedisLink(server.url, "team-test:")
    writes = WriteBehind(link)
    redis_teams = RedisTeamPolicyState(link, writes, fail_open=False)
    keys = RedisKeyPolicyState(link, writes, fail_open=False, teams=redis_teams)
    await link.start()
    await writes.start()
    assert await link.wait_up(5)

    async def flushed() -> None:
        while writes.pending:
            await asyncio.sleep(0.01)

    yield Backend(KeyPolicy(keys, Prices(), redis_teams), redis_teams, flushed)
    await writes.stop()
    await link.stop()


def member(rules: TeamRules, digest: int) -> ClientIdentity:
    policy = ClientKey(key=f"sk-member-{digest:04d}", name="dan-key", max_requests_per_minute=1)
    return ClientIdentity("dan-key", "dan-key", bytes([digest]) * 32, policy, limited=True, team=rules)


async def outcome(backend: Backend, identity: ClientIdentity, model: str) -> tuple[int, str, str]:
    try:
        await backend.policy.admit(identity, model, lambda: [model], now=NOW)
    except PolicyRefusal as refusal:
        return refusal.status, refusal.code, refusal.message
    return 200, "", ""


async def test_team_refusals_come_before_the_key_limits_with_the_in_process_messages(backend: Backend) -> None:
    usd = TeamRules("eng", "active", (), 1.0, None, 1.0, "month", False)
    dan = member(usd, 1)
    backend.teams.add_usage("eng", NOW, tokens=10, cost_usd=0.4)
    await backend.settle()
    first = await outcome(backend, dan, PRICED)
    unpriced = await outcome(backend, dan, UNPRICED)  # the team's price rule, before the spent rate
    second = await outcome(backend, dan, PRICED)  # the key's one request a minute is taken
    backend.teams.add_usage("eng", NOW, tokens=10, cost_usd=0.6)
    await backend.settle()
    spent = await outcome(backend, dan, PRICED)
    credits = TeamRules("ops", "active", (), None, 900.0, 1000.0, "week", True)
    backend.teams.add_usage("ops", NOW, tokens=10, cost_usd=0.9)
    await backend.settle()
    carol = member(credits, 2)
    out_of_credits = await outcome(backend, carol, PRICED)
    assert first == (200, "", "")
    assert unpriced[:2] == (403, "model_price_unknown") and "team 'eng'" in unpriced[2]
    assert second[:2] == (429, "rate_limit_exceeded")
    assert spent[:2] == (403, "team_budget_exhausted")
    assert spent[2].startswith("team budget exhausted: team 'eng' has spent $1.00 of $1.00 this month;")
    assert out_of_credits[:2] == (403, "insufficient_credits")
    assert out_of_credits[2].startswith("insufficient credits: team 'ops' has used 900.00 of its 900.00 credits")
    # refused by its team, carol's key never took its one request a minute: a team with room admits it
    roomy = member(TeamRules("ops", "active", (), None, None, 1.0, "week", True), 2)
    assert await outcome(backend, roomy, PRICED) == (200, "", "")
