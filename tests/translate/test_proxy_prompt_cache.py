"""Prompt caching across dialects, through the running proxy with the official SDKs.

Breakpoints (`cache_control`) reach a Claude upstream from every client dialect that can write them
(OpenAI chat and Responses take them on content parts and tools, as gateways do; Gemini has none);
OpenAI's `prompt_cache_key` becomes Claude breakpoints, and Claude's breakpoints a
`prompt_cache_key` for a Responses upstream; cached tokens show in every dialect's usage fields.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as genai_types

from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream

MARK = {"type": "ephemeral"}


def config(base: str) -> str:
    return (
        f"claude-api-key:\n  - api-key: sk-c\n    base-url: {base}\n    models: [{{name: claude-fake-1}}]\n"
        f"codex-api-key:\n  - api-key: sk-x\n    base-url: {base}/v1\n    models: [{{name: gpt-fake}}]\n"
        f"openai-compatibility:\n  - name: keyed\n    base-url: {base}/v1\n    support-prompt-cache-key: true\n"
        f"    api-key-entries: [{{api-key: sk-k}}]\n    models: [{{name: gpt-keyed}}]\n"
        f"  - name: plain\n    base-url: {base}/v1\n"
        f"    api-key-entries: [{{api-key: sk-p}}]\n    models: [{{name: gpt-plain}}]\n"
    )


def marked(body: dict[str, Any]) -> list[str]:
    """Where the breakpoints of a Messages body are."""
    out = [f"tool:{t['name']}" for t in body.get("tools") or () if "cache_control" in t]
    system = body.get("system")
    out += [f"system:{b['text']}" for b in system if "cache_control" in b] if isinstance(system, list) else []
    for m in body["messages"]:
        content = m["content"]
        if isinstance(content, list):
            out += [f"{m['role']}:{b.get('text')}" for b in content if "cache_control" in b]
    return out


async def test_chat_breakpoints_reach_claude(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    await sdk.chat.completions.create(
        model="claude-fake-1",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "long rules", "cache_control": MARK}]},  # type: ignore[list-item,typeddict-unknown-key]
            {
                "role": "user",
                "content": [{"type": "text", "text": "big doc", "cache_control": MARK}, {"type": "text", "text": "q"}],
            },  # type: ignore[list-item,typeddict-unknown-key]
        ],
        tools=[
            {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}, "cache_control": MARK}  # type: ignore[typeddict-unknown-key]
        ],
    )
    assert marked(fake.seen[-1].json) == ["tool:look", "system:long rules", "user:big doc"]


async def test_responses_breakpoints_and_prompt_cache_key_reach_claude(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    await sdk.responses.create(
        model="claude-fake-1",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "doc", "cache_control": MARK}]}],  # type: ignore[list-item,typeddict-unknown-key]
    )
    assert marked(fake.seen[-1].json) == ["user:doc"]
    # no breakpoints, but a prompt_cache_key: Claude caches the system prompt and the conversation so far
    await sdk.responses.create(
        model="claude-fake-1", instructions="be brief", input="hello there", prompt_cache_key="conv-7"
    )
    assert marked(fake.seen[-1].json) == ["system:be brief", "user:hello there"]
    await sdk.responses.create(model="claude-fake-1", instructions="be brief", input="hello there")
    assert marked(fake.seen[-1].json) == []  # neither: nothing is marked


async def test_claude_breakpoints_give_a_responses_upstream_a_stable_prompt_cache_key(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    sdk = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    system = [{"type": "text", "text": "long rules", "cache_control": MARK}]
    for question in ("first?", "second?"):
        await sdk.messages.create(
            model="gpt-fake",
            max_tokens=16,
            system=system,
            messages=[{"role": "user", "content": question}],  # type: ignore[arg-type]
        )
    await sdk.messages.create(model="gpt-fake", max_tokens=16, messages=[{"role": "user", "content": "plain"}])
    first, second, plain = (s.json for s in fake.seen)
    assert first["prompt_cache_key"].startswith("claude-")
    assert second["prompt_cache_key"].startswith("claude-") and second["prompt_cache_key"] != first["prompt_cache_key"]
    assert "prompt_cache_key" not in plain
    await sdk.messages.create(
        model="gpt-fake",
        max_tokens=16,
        system=system,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "first?"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "more"},
        ],
    )
    assert fake.seen[-1].json["prompt_cache_key"] == first["prompt_cache_key"]  # the same conversation, the same key


async def test_support_prompt_cache_key(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    """`support-prompt-cache-key: true`: every request to that provider carries one (the client's own,
    a Responses client's included); other providers get none added."""
    fake, base = upstream
    proxy = await start_proxy(config(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    chat = [{"role": "user", "content": "hi"}]
    await sdk.chat.completions.create(model="gpt-keyed", messages=chat)  # type: ignore[arg-type]
    derived = fake.seen[-1].json["prompt_cache_key"]
    assert derived.startswith("cliproxy-")
    await sdk.chat.completions.create(model="gpt-keyed", messages=chat)  # type: ignore[arg-type]
    assert fake.seen[-1].json["prompt_cache_key"] == derived  # the same conversation, the same key
    raw_before = len(fake.seen)
    await sdk.chat.completions.create(model="gpt-keyed", messages=chat, extra_body={"prompt_cache_key": "mine"})  # type: ignore[arg-type]
    assert fake.seen[raw_before].json["prompt_cache_key"] == "mine"
    await sdk.responses.create(model="gpt-keyed", input="hi", prompt_cache_key="from-responses")
    assert fake.seen[-1].json["prompt_cache_key"] == "from-responses"
    await sdk.chat.completions.create(model="gpt-plain", messages=chat)  # type: ignore[arg-type]
    assert "prompt_cache_key" not in fake.seen[-1].json


async def test_cached_tokens_in_every_dialects_usage(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    """The fake Claude answer read 2 tokens from the cache and wrote 1; the fake chat answer read 2."""
    _, base = upstream
    proxy = await start_proxy(config(base))
    oai = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    chat = await oai.chat.completions.create(model="claude-fake-1", messages=[{"role": "user", "content": "x"}])
    assert chat.usage is not None and chat.usage.prompt_tokens_details is not None
    assert chat.usage.prompt_tokens_details.cached_tokens == 2 and chat.usage.prompt_tokens == 8
    resp = await oai.responses.create(model="claude-fake-1", input="x")
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 2
    gem = genai.Client(api_key=CLIENT_KEY, http_options=genai_types.HttpOptions(base_url=proxy.url))
    answer = await gem.aio.models.generate_content(model="claude-fake-1", contents="x")
    assert answer.usage_metadata is not None and answer.usage_metadata.cached_content_token_count == 2
    claude = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    message = await claude.messages.create(model="gpt-plain", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert message.usage.cache_read_input_tokens == 2 and message.usage.input_tokens == 3
    streamed = [
        c
        async for c in await oai.chat.completions.create(
            model="claude-fake-1",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=64,
        )
    ]
    usage = [c.usage for c in streamed if c.usage is not None]
    assert usage and usage[-1].prompt_tokens_details is not None
    assert usage[-1].prompt_tokens_details.cached_tokens is not None
