"""Model resolution through the real app: prefixes, `force-model-prefix`,
aliases and alias pools, `excluded-models` wildcards, disabled entries, thinking suffixes."""

from __future__ import annotations

from collections import Counter

import aiohttp
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


async def chat(proxy: Proxy, model: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def listed(proxy: Proxy) -> set[str]:
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    return {m.id async for m in sdk.models.list()}


def prefixed(base: str, *, force: bool) -> str:
    return f"""
force-model-prefix: {str(force).lower()}
openai-compatibility:
  - name: team
    prefix: team-a
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-team}}]
    models: [{{name: gpt-fake}}]
  - name: plain
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-plain}}]
    models: [{{name: gpt-fake}}]
"""


async def test_prefix_reaches_only_prefixed_and_is_stripped(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(prefixed(base, force=False))
    for _ in range(3):
        status, _ = await chat(proxy, "team-a/gpt-fake")
        assert status == 200
    assert {s.header("Authorization") for s in fake.seen} == {"Bearer sk-team"}
    assert {s.json["model"] for s in fake.seen} == {"gpt-fake"}  # prefix stripped upstream
    fake.seen.clear()
    for _ in range(4):  # not forced: a bare name reaches both
        assert (await chat(proxy, "gpt-fake"))[0] == 200
    assert Counter(s.header("Authorization") for s in fake.seen) == {"Bearer sk-team": 2, "Bearer sk-plain": 2}
    assert await listed(proxy) == {"team-a/gpt-fake", "gpt-fake"}
    status, body = await chat(proxy, "team-b/gpt-fake")
    assert status == 400 and "team-b/gpt-fake" in str(body)


async def test_force_model_prefix(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(prefixed(base, force=True))
    for _ in range(3):
        assert (await chat(proxy, "gpt-fake"))[0] == 200
    assert {s.header("Authorization") for s in fake.seen} == {"Bearer sk-plain"}
    fake.seen.clear()
    assert (await chat(proxy, "team-a/gpt-fake"))[0] == 200
    assert fake.seen[0].header("Authorization") == "Bearer sk-team"


async def test_forced_prefix_equal_to_model_keeps_bare_id(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(
        f"force-model-prefix: true\nclaude-api-key:\n  - api-key: sk-c\n    base-url: {base}\n"
        "    prefix: claude-x\n"
        "    models: [{name: claude-fake-1, alias: claude-x}, {name: claude-fake-1, alias: other}]\n"
    )
    assert await listed(proxy) == {"claude-x/claude-x", "claude-x", "claude-x/other"}


async def test_alias_pool_round_robins_and_moves_on_early_failure(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(f"""
openai-compatibility:
  - name: pool
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-pool}}]
    models:
      - {{name: up-one, alias: pooled}}
      - {{name: up-two, alias: pooled}}
""")
    for _ in range(4):
        assert (await chat(proxy, "pooled"))[0] == 200
    assert Counter(s.model for s in fake.seen) == {"up-one": 2, "up-two": 2}
    assert [s.model for s in fake.seen][:2] in (["up-one", "up-two"], ["up-two", "up-one"])
    assert await listed(proxy) == {"pooled"}
    fake.seen.clear()
    fake.fail(503, model="up-one", times=0)
    for _ in range(2):  # same credential, next name in the pool, invisible to the client
        assert (await chat(proxy, "pooled"))[0] == 200
    served = [s.model for s in fake.seen if s.model == "up-two"]
    assert len(served) == 2 and {s.header("Authorization") for s in fake.seen} == {"Bearer sk-pool"}


@pytest.mark.parametrize(
    ("patterns", "gone", "kept"),
    [
        (["claude-opus-*"], {"claude-opus-4-1-20250805", "claude-opus-4-20250514"}, "claude-sonnet-4-20250514"),
        (["*sonnet*"], {"claude-sonnet-4-5-20250929", "claude-3-7-sonnet-20250219"}, "claude-haiku-4-5-20251001"),
        (
            ["*-20241022", "CLAUDE-HAIKU-4-5-*"],
            {"claude-3-5-haiku-20241022", "claude-haiku-4-5-20251001"},
            "claude-opus-4-20250514",
        ),
    ],
)
async def test_excluded_models_wildcards_on_the_builtin_list(
    patterns: list[str], gone: set[str], kept: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(
        f"claude-api-key:\n  - api-key: sk-c\n    base-url: {base}\n    excluded-models: {patterns}\n"
    )
    models = await listed(proxy)
    assert kept in models and not (gone & models)
    for model in gone:
        status, body = await chat(proxy, model)
        assert status == 400 and model in str(body)
    assert (await chat(proxy, kept))[0] == 200
    assert [s.json["model"] for s in fake.seen] == [kept]


async def test_excluded_star_and_disabled_entries(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(f"""
gemini-api-key:
  - api-key: g-all-excluded
    base-url: {base}
    excluded-models: ["*"]
  - api-key: g-on
    base-url: {base}
    models: [{{name: gemini-fake}}]
  - api-key: g-off
    base-url: {base}
    disabled: true
    models: [{{name: gemini-fake}}, {{name: gemini-only-disabled}}]
openai-compatibility:
  - name: dead
    disabled: true
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-off}}]
    models: [{{name: gpt-off}}]
""")
    assert await listed(proxy) == {"gemini-fake"}
    for _ in range(3):
        assert (await chat(proxy, "gemini-fake"))[0] == 200
    assert {s.header("x-goog-api-key") for s in fake.seen} == {"g-on"}
    for model in ("gpt-off", "gemini-only-disabled", "gemini-2.5-pro"):
        status, body = await chat(proxy, model)
        assert status == 400 and f"unknown provider for model {model}" in str(body)


async def test_thinking_suffix_resolves_base_and_sets_budget(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(
        f"gemini-api-key:\n  - api-key: g1\n    base-url: {base}\n    models: [{{name: gemini-fake, alias: gem}}]\n"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1beta/models/gem(8192):generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": CLIENT_KEY},
        ) as resp,
    ):
        assert resp.status == 200
    (seen,) = fake.seen
    assert seen.path == "/v1beta/models/gemini-fake:generateContent"
    assert seen.json["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 8192
