"""The Redis-backed services against a real redis-server, two instances standing for two processes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from cliproxy.accounts.model import TeamRules
from cliproxy.clientkeys import ClientIdentity
from cliproxy.config.model import ClientKey
from cliproxy.policy.limits import KeyPolicy, PolicyRefusal
from cliproxy.policy.state import KeyRef, LimitReached, Limits
from cliproxy.pricing import Prices
from cliproxy.routing.affinity import LocalSessionAffinity
from cliproxy.routing.failures import Failure
from cliproxy.routing.health import CoolingSettings, LocalCredentialHealth
from cliproxy.shared.affinity import RedisSessionAffinity
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.health import RedisCredentialHealth
from cliproxy.shared.key_state import RedisKeyPolicyState
from cliproxy.shared.locks import POLL_SECONDS, RedisLocks
from cliproxy.shared.script_calls import ScriptCalls
from cliproxy.shared.team_state import RedisTeamPolicyState
from cliproxy.shared.writes import WriteBehind
from tests.shared.conftest import RedisServer

SETTINGS = CoolingSettings(disabled=False, transient_seconds=0)
KEY = KeyRef(b"\x07" * 32, "team-key")


@dataclass
class Process:
    link: RedisLink
    writes: WriteBehind
    health: RedisCredentialHealth
    affinity: RedisSessionAffinity
    locks: RedisLocks
    keys: RedisKeyPolicyState


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.fixture
async def two(redis_server: RedisServer) -> AsyncIterator[tuple[Process, Process]]:
    made = []
    for _ in range(2):
        link = RedisLink(redis_server.url, "test:")
        writes = WriteBehind(link)
        process = Process(
            link,
            writes,
            RedisCredentialHealth(link, LocalCredentialHealth()),
            RedisSessionAffinity(link, writes, LocalSessionAffinity()),
            RedisLocks(link),
            RedisKeyPolicyState(link, writes, fail_open=False, lease_seconds=1.0),
        )
        await link.start()
        await writes.start()
        await process.keys.start()
        assert await link.wait_up(5)
        made.append(process)
    yield made[0], made[1]
    for process in made:
        await process.keys.stop()
        await process.writes.stop()
        await process.link.stop()


async def test_two_processes_failing_at_once_advance_a_429_backoff_once(two: tuple[Process, Process]) -> None:
    a, b = two
    failure = Failure(429, b"", "chat")
    waits = await asyncio.gather(
        a.health.failed("cred", "m", failure, SETTINGS), b.health.failed("cred", "m", failure, SETTINGS)
    )
    assert all(0 < w <= 1.0 for w in waits)  # level 0 (1 s), not 1 (2 s)
    await until(lambda: a.health.snapshot() and b.health.snapshot())
    assert [v.level for v in a.health.snapshot()] == [v.level for v in b.health.snapshot()] == [0]
    assert b.health.remaining("cred", "m", b.health.clock()) > 0
    await b.health.succeeded("cred", "m")
    await until(lambda: not a.health.cooling())


async def test_a_binding_made_on_one_process_is_read_locally_on_the_other(two: tuple[Process, Process]) -> None:
    a, b = two
    await a.affinity.bind("gpt-x", "session-1", "cred-2", 60)
    await until(lambda: b.affinity.bound("gpt-x", "session-1") == "cred-2")
    assert [v.credential_id for v in b.affinity.snapshot()] == ["cred-2"]
    assert "session-1" not in str(b.affinity.snapshot())


async def test_the_refresh_lock_admits_one_process_at_a_time(two: tuple[Process, Process]) -> None:
    a, b = two
    order: list[str] = []

    async def hold(process: Process, name: str) -> None:
        async with process.locks.hold("claude-a.json"):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    await asyncio.gather(hold(a, "a"), hold(b, "b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_a_refresh_lock_that_redis_refuses_waits_by_its_deadline_without_spinning(
    redis_server: RedisServer,
) -> None:
    """An error answer (here OOM) leaves the link up: the wait polls at its pace and ends on time."""
    link = RedisLink(redis_server.url, "test:")
    await link.start()
    try:
        assert await link.wait_up(5)
        await link.client.config_set("maxmemory-policy", "noeviction")
        await link.client.config_set("maxmemory", 1)
        await link.client.config_resetstat()
        locks = RedisLocks(link, wait_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="Redis refused it"):
            async with locks.hold("claude-a.json"):
                pass
        assert 0.5 <= time.monotonic() - started < 2.0
        sets = (await link.client.info("commandstats"))["cmdstat_set"]["calls"]
        assert sets <= 0.5 / POLL_SECONDS + 2  # one try per poll, not a busy loop
        assert link.up
    finally:
        await link.client.config_set("maxmemory", 0)
        await link.stop()


async def test_a_script_batch_that_fails_with_no_link_error_fails_every_call_of_it(redis_server: RedisServer) -> None:
    """A batch's failure, whatever its type, reaches each call of the batch instead of leaving them
    waiting for ever (here an argument hiredis cannot pack fails the whole write)."""
    link = RedisLink(redis_server.url, "test:")
    await link.start()
    try:
        assert await link.wait_up(5)
        calls = ScriptCalls(link, "return ARGV[1]")
        good, bad = calls.call([], ["fine"]), calls.call([], [None])
        done, _ = await asyncio.wait([good, bad], timeout=5)
        assert len(done) == 2
        for future in (good, bad):
            assert isinstance(future.exception(), TypeError)
        assert await calls.call([], ["after"]) == b"after"  # the next batch goes through
    finally:
        await link.stop()


async def test_error_answers_are_logged_once_per_kind(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every limited request meets the error answer during an outage of that kind: one line each."""
    caplog.set_level(logging.ERROR, "cliproxy.shared.connection")
    link = RedisLink(redis_server.url, "test:")
    await link.start()
    try:
        assert await link.wait_up(5)
        await link.client.set("text", "v")
        await link.client.config_set("maxmemory-policy", "noeviction")
        await link.client.config_set("maxmemory", 1)
        for _ in range(5):
            for command in (link.client.set("k", "v"), link.client.llen("text")):
                with pytest.raises(link.errors) as answered:
                    await command
                link.failed(answered.value)
        lines = [r.getMessage() for r in caplog.records if "Redis refused" in r.getMessage()]
        assert len(lines) == 2, lines
        assert "OutOfMemoryError" in lines[0] and "WRONGTYPE" in lines[1]
        assert link.up
    finally:
        await link.client.config_set("maxmemory", 0)
        await link.stop()


async def test_a_dead_process_concurrency_slot_frees_itself_when_its_lease_runs_out(
    two: tuple[Process, Process],
) -> None:
    a, b = two
    limits = Limits(max_concurrent=1)
    release = await a.keys.admit(KEY, limits, time.time())
    assert release is not None
    await a.keys.stop()  # the process "dies": no release, no renewal
    with pytest.raises(LimitReached) as refused:
        await b.keys.admit(KEY, limits, time.time())
    assert refused.value.kind == "concurrency"
    await asyncio.sleep(1.1)
    second = await b.keys.admit(KEY, limits, time.time())
    assert second is not None
    second()


async def test_a_held_slot_is_renewed_while_its_request_runs(two: tuple[Process, Process]) -> None:
    a, b = two
    limits = Limits(max_concurrent=1)
    release = await a.keys.admit(KEY, limits, time.time())
    assert release is not None
    await asyncio.sleep(1.5)  # longer than the lease: renewals keep it
    with pytest.raises(LimitReached):
        await b.keys.admit(KEY, limits, time.time())
    release()
    await until(lambda: not a.writes.pending)
    later = await b.keys.admit(KEY, limits, time.time())
    assert later is not None
    later()


async def test_a_slot_held_longer_than_its_inflight_set_lives_is_still_counted(two: tuple[Process, Process]) -> None:
    """Admission gives the in-flight set an expiry of the lease plus a second (2 s here); a long
    stream with no admission after it must keep its slot past that, so renewals push it forward too."""
    a, b = two
    limits = Limits(max_concurrent=1)
    release = await a.keys.admit(KEY, limits, time.time())
    assert release is not None
    await asyncio.sleep(3.0)  # longer than the set's own expiry, without another admission
    assert await b.link.client.exists(b.link.key("inflight", KEY.digest.hex())) == 1
    with pytest.raises(LimitReached) as refused:
        await b.keys.admit(KEY, limits, time.time())
    assert refused.value.kind == "concurrency"
    release()


async def test_a_team_budget_is_a_limit_while_redis_is_down(redis_server: RedisServer) -> None:
    """fail-closed: a member key of a budgeted team gets 503; the same team without a budget is served."""
    link = RedisLink(redis_server.url, "test:")
    writes = WriteBehind(link)
    teams = RedisTeamPolicyState(link, writes, fail_open=False)
    policy = KeyPolicy(RedisKeyPolicyState(link, writes, fail_open=False), Prices(), teams)
    rules = TeamRules("eng", "active", (), 10.0, None, 1.0, "month", True)
    member = ClientIdentity(
        "alice-key", "alice-key", b"\x09" * 32, ClientKey(key="sk-member-0009"), limited=True, team=rules
    )
    redis_server.stop()  # never connected: Redis is down from the start
    with pytest.raises(PolicyRefusal) as refused:
        await policy.admit(member, "gpt-x", lambda: ["gpt-x"])
    assert refused.value.status == 503 and refused.value.message == "shared state unavailable"
    unbudgeted = dataclasses.replace(member, team=dataclasses.replace(rules, budget_usd=None))
    assert await policy.admit(unbudgeted, "gpt-x", lambda: ["gpt-x"]) is None
    open_teams = RedisTeamPolicyState(link, writes, fail_open=True)
    open_policy = KeyPolicy(RedisKeyPolicyState(link, writes, fail_open=True), Prices(), open_teams)
    assert await open_policy.admit(member, "gpt-x", lambda: ["gpt-x"]) is None
    await link.stop()
