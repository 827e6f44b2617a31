"""Session affinity through the real app: a session stays on one credential until that credential
becomes unavailable, then moves to one other and stays there; bindings show in credential-status."""

from __future__ import annotations

import json
from collections import Counter

import aiohttp
import anthropic
import openai

from tests.fakes.claude_code import recorded_request, replay_headers
from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

SECRET = "mgmt-secret-affinity"
KEYS = ("sk-ant-a", "sk-ant-b", "sk-ant-c")


def claude_keys(base: str, *, affinity: bool = True, ttl: str = "1h") -> str:
    entries = "".join(
        f"  - api-key: {k}\n    base-url: {base}\n    models:\n      - name: claude-fake-1\n" for k in KEYS
    )
    return (
        f"remote-management:\n  secret-key: {SECRET}\n"
        f"routing:\n  strategy: round-robin\n  session-affinity: {str(affinity).lower()}\n"
        f"  session-affinity-ttl: {ttl}\nclaude-api-key:\n{entries}"
    )


def key_of(fake: FakeUpstream, index: int) -> str:
    return str(fake.seen[index].header("Authorization")).removeprefix("Bearer ")


async def replay_claude_code(proxy: Proxy, n: int, session: str | None = None) -> list[int]:
    """`n` requests of one recorded Claude Code session, exactly as Claude Code sends them."""
    _, body = recorded_request()
    headers = replay_headers("claude_code_interactive", CLIENT_KEY)
    if session is not None:
        headers["X-Claude-Code-Session-Id"] = session
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.post(
                proxy.url + "/v1/messages?beta=true", data=json.dumps({**body, "stream": False}), headers=headers
            ) as resp:
                await resp.read()
                statuses.append(resp.status)
    return statuses


async def test_one_claude_code_session_stays_on_one_credential_then_moves_once(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    assert await replay_claude_code(proxy, 20) == [200] * 20
    first = {key_of(fake, i) for i in range(20)}
    assert len(first) == 1  # round-robin alone would have used all three
    (bound,) = first

    fake.fail(429, key=bound, times=0, dialect="claude")  # the bound credential is out of quota from now on
    assert await replay_claude_code(proxy, 10) == [200] * 10
    later = [key_of(fake, i) for i in range(20, len(fake.seen))]
    assert later[0] == bound  # tried first, answered 429
    served = later[1:]
    assert len(served) == 10 and len(set(served)) == 1 and served[0] != bound

    async with (
        aiohttp.ClientSession() as http,
        http.get(proxy.url + "/v0/management/credential-status", headers={"X-Management-Key": SECRET}) as resp,
    ):
        status = await resp.json()
    affinity = status["session_affinity"]
    assert affinity["enabled"] is True and affinity["ttl"] == "1h"
    (binding,) = affinity["bindings"]
    assert binding["model"] == "claude-fake-1" and 3500 < binding["seconds_left"] <= 3600
    assert "359c2036" not in binding["session"]  # a digest, not the session id itself
    by_id = {c["id"]: c for c in status["credentials"]}
    assert by_id[binding["credential"]]["sessions"] == 1
    assert sum(c["sessions"] for c in status["credentials"]) == 1


async def test_without_affinity_round_robin_spreads_the_same_session(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base, affinity=False))
    assert await replay_claude_code(proxy, 6) == [200] * 6
    assert Counter(key_of(fake, i) for i in range(6)) == {k: 2 for k in KEYS}


async def test_sessions_are_told_apart_and_each_sticks(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    sessions = ["0c3f6491-fdb5-4f38-ad1d-c7823e35651b", "f08e4446-60f3-41c5-92dc-ca091f2b9b08", "d6707191-e72b"]
    placed: dict[str, set[str]] = {}
    for _ in range(3):
        for session in sessions:
            before = len(fake.seen)
            await replay_claude_code(proxy, 1, session)
            placed.setdefault(session, set()).add(key_of(fake, before))
    assert all(len(keys) == 1 for keys in placed.values())
    assert len({next(iter(k)) for k in placed.values()}) == 3  # new sessions still spread by round-robin


async def test_sdk_sessions_from_headers_body_fields_and_first_message(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """OpenAI's `prompt_cache_key`, an `X-Session-ID` header, and a conversation's first message."""
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    chat = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    claude = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)

    async def spread(send: object) -> set[str]:
        start = len(fake.seen)
        for _ in range(4):
            await send()  # type: ignore[operator]
        return {key_of(fake, i) for i in range(start, len(fake.seen))}

    async def by_cache_key() -> None:
        await chat.chat.completions.create(
            model="claude-fake-1", messages=[{"role": "user", "content": "hi"}], extra_body={"prompt_cache_key": "pk-1"}
        )

    async def by_header() -> None:
        await claude.messages.create(
            model="claude-fake-1",
            max_tokens=16,
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"X-Session-ID": "conv-42"},
        )

    turn = [{"role": "user", "content": "first words"}]

    async def by_first_message() -> None:
        await claude.messages.create(model="claude-fake-1", max_tokens=16, system="be brief", messages=turn)
        turn.extend([{"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}])

    assert len(await spread(by_cache_key)) == 1
    assert len(await spread(by_header)) == 1
    assert len(await spread(by_first_message)) == 1


async def test_a_binding_expires_after_the_ttl_without_use(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(claude_keys(base, ttl="10m"), clock=clock)
    await replay_claude_code(proxy, 3)
    assert len({key_of(fake, i) for i in range(3)}) == 1
    clock.advance(9 * 60)
    await replay_claude_code(proxy, 1)  # a use within the ttl keeps the binding
    clock.advance(9 * 60)
    await replay_claude_code(proxy, 1)
    assert len({key_of(fake, i) for i in range(5)}) == 1
    clock.advance(11 * 60)  # unused for longer than the ttl: the strategy places the session again
    await replay_claude_code(proxy, 1)
    assert key_of(fake, 5) != key_of(fake, 4)
