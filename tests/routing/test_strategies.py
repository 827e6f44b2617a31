"""Routing strategies and priority tiers through the real app.

Every test sends real requests with the official SDK and reads which upstream key the fake saw,
so what is proven is the credential each request actually reached.
"""

from __future__ import annotations

from collections import Counter

import anthropic
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


def compat(base: str, keys: str, *, strategy: str = "", extra: str = "") -> str:
    routing = f"routing:\n  strategy: {strategy}\n" if strategy else ""
    return f"""{routing}{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
{keys}
    models:
      - name: gpt-fake
"""


def entries(*keys: str, weights: tuple[int, ...] = ()) -> str:
    lines = []
    for index, key in enumerate(keys):
        lines.append(f"      - api-key: {key}")
        if weights:
            lines.append(f"        weight: {weights[index]}")
    return "\n".join(lines)


async def ask(proxy: Proxy, n: int = 1) -> None:
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    for _ in range(n):
        answer = await sdk.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "x"}])
        assert answer.choices[0].message.content == "Hello from fake"


def keys_seen(fake: FakeUpstream) -> list[str]:
    return [str(s.header("Authorization")).removeprefix("Bearer ") for s in fake.seen]


@pytest.mark.parametrize("spelling", ["", "round-robin", "rr"])
async def test_round_robin_cycles_in_id_order(
    spelling: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, entries("sk-a", "sk-b", "sk-c"), strategy=spelling))
    await ask(proxy, 9)
    seen = keys_seen(fake)
    assert Counter(seen) == {"sk-a": 3, "sk-b": 3, "sk-c": 3}
    assert seen[:3] == seen[3:6] == seen[6:9]  # a fixed cycle: the credentials sorted by id


async def test_round_robin_skips_a_cooling_credential(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base, entries("sk-a", "sk-b", "sk-c")), clock=clock)
    fake.fail(500, key="sk-b")
    await ask(proxy, 6)
    assert fake.calls("sk-b") and len(fake.calls("sk-b")) == 1  # failed once, then cooling for 60 s
    assert len(fake.calls("sk-a")) + len(fake.calls("sk-c")) == 6
    clock.advance(60)
    fake.seen.clear()
    await ask(proxy, 3)
    assert Counter(keys_seen(fake)) == {"sk-a": 1, "sk-b": 1, "sk-c": 1}


@pytest.mark.parametrize("spelling", ["fill-first", "ff"])
async def test_fill_first_burns_one_credential_before_the_next(
    spelling: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base, entries("sk-a", "sk-b", "sk-c"), strategy=spelling), clock=clock)
    await ask(proxy, 4)
    (first,) = set(keys_seen(fake))
    fake.seen.clear()
    fake.fail(429, key=first)  # the first credential is used up → the next in id order takes over
    await ask(proxy, 3)
    seen = keys_seen(fake)
    assert seen[0] == first and len(set(seen[1:])) == 1 and seen[1] != first
    second = seen[1]
    clock.advance(1)  # the 429 backoff (1 s) is over: back to the first credential
    fake.seen.clear()
    await ask(proxy, 2)
    assert keys_seen(fake) == [first, first]
    assert second != first


@pytest.mark.parametrize("spelling", ["weighted-round-robin", "wrr"])
async def test_weighted_round_robin_follows_weights(
    spelling: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, entries("sk-a", "sk-b", "sk-zero", weights=(3, 1, 0)), strategy=spelling))
    await ask(proxy, 8)
    seen = keys_seen(fake)
    assert Counter(seen) == {"sk-a": 6, "sk-b": 2}  # weight 0 is never picked
    # smooth (nginx) weighting interleaves: never three of one before the other appears twice
    assert seen[:4].count("sk-b") == 1 and seen[4:].count("sk-b") == 1


async def test_weight_zero_is_still_used_by_other_strategies(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, entries("sk-a", "sk-zero", weights=(1, 0))))
    await ask(proxy, 2)
    assert Counter(keys_seen(fake)) == {"sk-a": 1, "sk-zero": 1}


async def test_priority_tiers_highest_first_then_fall_back(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    config = "claude-api-key:\n" + "".join(
        f"  - api-key: {key}\n    base-url: {base}\n    priority: {prio}\n    models: [{{name: claude-fake-1}}]\n"
        for key, prio in (("sk-low", 0), ("sk-high-1", 10), ("sk-high-2", 10), ("sk-neg", -5))
    )
    proxy = await start_proxy(config, clock=clock)
    sdk = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)

    async def ask_claude(n: int) -> list[str]:
        fake.seen.clear()
        for _ in range(n):
            await sdk.messages.create(model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}])
        return keys_seen(fake)

    assert Counter(await ask_claude(4)) == {"sk-high-1": 2, "sk-high-2": 2}
    fake.fail(503, key="sk-high-1", dialect="claude")
    fake.fail(503, key="sk-high-2", dialect="claude")
    # the whole top tier fails → the next tier serves the same request, then keeps serving
    seen = await ask_claude(3)
    assert set(seen[:2]) == {"sk-high-1", "sk-high-2"} and seen[2:] == ["sk-low"] * 3
    assert await ask_claude(2) == ["sk-low", "sk-low"]
    clock.advance(60)  # the top tier's transient cooldown is over
    assert set(await ask_claude(2)) == {"sk-high-1", "sk-high-2"}
