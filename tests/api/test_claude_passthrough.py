"""Anthropic Messages passthrough: the `anthropic` SDK → cliproxy → a `claude-api-key` fake upstream.

Same dialect on both sides, so the proxy may change only the model name and the auth: request
and answer bytes (thinking blocks, signatures, `cache_control`, unknown fields) must survive
exactly, and the SSE `event:` lines with them.
"""

from __future__ import annotations

import json

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter, hang_up_mid_stream, provider_yaml
from tests.fakes.upstreams import CLAUDE_MESSAGE, FakeUpstream, wire_body

UP_KEY = "sk-ant-up-1"
TOOLS = [
    {
        "name": "get_weather",
        "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
# A request the proxy must not touch: cache_control, a signed thinking block in the history,
# redacted thinking, unknown fields at every level, odd spacing and escapes.
RAW_REQUEST = (
    b'{"model":  "claude-fake-1", "max_tokens": 64,\n "system": [{"type": "text", "text": "be brief",'
    b' "cache_control": {"type": "ephemeral", "ttl": "1h"}}],'
    b' "messages": [{"role": "user", "content": [{"type": "text", "text": "hi \\u00e9",'
    b' "cache_control": {"type": "ephemeral"}}]},'
    b' {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "EqQBsig+/=="},'
    b' {"type": "redacted_thinking", "data": "EmwKAhgB"}, {"type": "text", "text": "hello"}]},'
    b' {"role": "user", "content": "again", "x_unknown_message_field": 1}],'
    b' "thinking": {"type": "enabled", "budget_tokens": 1024}, "x_vendor_extension": {"a": [1, 2]}}'
)


def claude_keys(base: str, *, keys: tuple[str, ...] = (UP_KEY,), models: str = "", extra: str = "") -> str:
    models = models or "      - name: claude-fake-1\n"
    return f"{extra}\n" + provider_yaml("claude-api-key", base, keys, models)


def client(proxy: Proxy, **kwargs: object) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0, **kwargs)  # type: ignore[arg-type]


async def post(proxy: Proxy, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "Content-Type": "application/json"}
    sent.update(headers)
    async with aiohttp.ClientSession() as http, http.post(proxy.url + path, data=body, headers=sent) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def assert_upstream_auth(headers: dict[str, str], key: str = UP_KEY) -> None:
    """Custom base-url: the credential as Bearer, never the client's key (in any header)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["authorization"] == f"Bearer {key}"
    assert "x-api-key" not in lowered
    assert CLIENT_KEY not in json.dumps(headers)


async def test_non_stream_bytes_survive_both_ways(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    status, _, body = await post(proxy, "/v1/messages", RAW_REQUEST)
    assert status == 200
    assert body == CLAUDE_MESSAGE  # thinking block, signature, escapes and unknown field untouched
    (seen,) = fake.seen
    assert seen.body == RAW_REQUEST
    assert (seen.path, seen.query) == ("/v1/messages", {"beta": "true"})
    assert_upstream_auth(seen.headers)
    assert seen.header("anthropic-version") == "2023-06-01"
    (record,) = proxy.usage.recent()
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (5, 3, 2)
    assert record.cache_creation_tokens == 1
    assert record.client_dialect == record.upstream_dialect == "claude"


async def test_sdk_create_and_beta_query_and_headers(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    message = await client(proxy).messages.create(
        model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature == "EqQBCkYIBxgCKkB+sig/==\u00e9"  # type: ignore[union-attr]
    assert message.content[1].text == "Hello from fake"  # type: ignore[union-attr]
    # anthropic 2.x sends its own anthropic-version and Bearer auth; both handled
    assert fake.seen[0].header("anthropic-version") == "2026-10-21"
    assert "Anthropic/Python" in str(fake.seen[0].header("User-Agent"))
    beta = await client(proxy).beta.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        betas=["interleaved-thinking-2025-05-14"],
    )
    assert beta.content[-1].text == "Hello from fake"  # type: ignore[union-attr]
    assert fake.seen[1].header("anthropic-beta") == "interleaved-thinking-2025-05-14"
    # anthropic 0.x / Claude Code spelling: ?beta=true on the client side, any anthropic-version
    status, _, body = await post(
        proxy, "/v1/messages?beta=true", RAW_REQUEST, **{"anthropic-version": "2099-01-01", "anthropic-beta": "a,b"}
    )
    assert status == 200 and body == CLAUDE_MESSAGE
    third = fake.seen[2]
    assert third.header("anthropic-version") == "2099-01-01" and third.header("anthropic-beta") == "a,b"
    assert third.query == {"beta": "true"} and third.body == RAW_REQUEST
    for seen in fake.seen:
        assert_upstream_auth(seen.headers)


async def test_stream_helper_and_wire_bytes(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    async with client(proxy).messages.stream(
        model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from fake" and final.stop_reason == "end_turn"
    raw = RAW_REQUEST.replace(b'"max_tokens": 64,', b'"max_tokens": 64, "stream": true,')
    status, headers, body = await post(proxy, "/v1/messages", raw)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert body == wire_body("anthropic_stream_thinking.txt")  # event: lines, signature_delta, unknown fields
    assert b"[DONE]" not in body
    assert fake.seen[-1].body == raw
    record = proxy.usage.recent()[-1]
    assert record.stream and (record.input_tokens, record.output_tokens, record.cached_tokens) == (5, 7, 2)


async def test_sdk_stream_thinking_signature(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(claude_keys(base))
    async with client(proxy).messages.stream(
        model="claude-fake-1",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[0].signature == "EqQBCkYIBxgCKkB+sig/==\u00e9"  # type: ignore[union-attr]
    assert final.content[0].thinking == 'Let me think about "hi".'  # type: ignore[union-attr]


async def test_tool_calls_stream_and_not(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    sdk = client(proxy)
    message = await sdk.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    async with sdk.messages.stream(
        model="claude-fake-1",
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        final = await stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use" and block.input == {"city": "Paris"} and final.stop_reason == "tool_use"
    # the follow-up turn carrying the tool result reaches the upstream as sent
    await sdk.messages.create(
        model="claude-fake-1",
        max_tokens=64,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "sunny"}]},
        ],
    )
    sent = fake.seen[-1].json["messages"]
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "sunny"}


async def test_count_tokens_upstream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    counted = await client(proxy).messages.count_tokens(
        model="claude-fake-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens == 7
    (seen,) = fake.seen
    assert (seen.path, seen.query) == ("/v1/messages/count_tokens", {"beta": "true"})
    assert_upstream_auth(seen.headers)


async def test_alias_changes_only_the_model(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base, models="      - name: claude-fake-1\n        alias: claude-nice\n"))
    raw = RAW_REQUEST.replace(b'"claude-fake-1"', b'"claude-nice"')
    status, _, body = await post(proxy, "/v1/messages", raw)
    assert status == 200 and body == CLAUDE_MESSAGE
    assert fake.seen[0].body == RAW_REQUEST


async def test_failover_on_overload_and_rate_limit(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base, keys=("sk-ant-a", "sk-ant-b", "sk-ant-c")))
    fake.fail(529, dialect="claude")
    fake.fail(429, dialect="claude")
    message = await client(proxy).messages.create(
        model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert message.content[-1].text == "Hello from fake"  # type: ignore[union-attr]
    assert len({s.header("Authorization") for s in fake.seen}) == len(fake.seen) == 3
    # every credential failing: the last upstream error comes back verbatim, in Anthropic's shape
    fake.fail(529, dialect="claude", times=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client(proxy).messages.create(
            model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "fake upstream error 529"},
    }


async def test_stream_failover_before_first_byte(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base, keys=("sk-ant-a", "sk-ant-b")))
    fake.fail(503, dialect="claude")
    async with client(proxy).messages.stream(
        model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        assert "".join([t async for t in stream.text_stream]) == "Hello from fake"
    assert len(fake.seen) == 2 and fake.seen[0].header("Authorization") != fake.seen[1].header("Authorization")


async def test_bad_request_not_retried(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base, keys=("sk-ant-a", "sk-ant-b"), extra="request-retry: 2"))
    fake.fail(400, dialect="claude", times=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(proxy).messages.create(
            model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "fake upstream error 400"},
    }
    assert len(fake.seen) == 1 and not proxy.health.snapshot()


async def test_all_cooling_is_anthropic_429_with_retry_after(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(claude_keys(base), clock=clock)
    fake.fail(429, dialect="claude", headers={"Retry-After": "7"})
    with pytest.raises(anthropic.RateLimitError):
        await client(proxy).messages.create(
            model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    status, headers, body = await post(proxy, "/v1/messages", RAW_REQUEST)
    assert status == 429 and headers["Retry-After"] == "7"
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert "All credentials for model claude-fake-1 are cooling down" in error["error"]["message"]
    with pytest.raises(anthropic.RateLimitError):
        await client(proxy).messages.create(
            model="claude-fake-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert len(fake.seen) == 1
    clock.advance(7)
    status, _, body = await post(proxy, "/v1/messages", RAW_REQUEST)
    assert status == 200 and body == CLAUDE_MESSAGE


async def test_unknown_model_in_anthropic_shape(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client(proxy).messages.create(
            model="claude-nope", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert "claude-nope" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert fake.seen == []


async def test_client_disconnect_cancels_upstream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    body = {"model": "claude-fake-1", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    await hang_up_mid_stream(proxy, fake, "/v1/messages", b"event: message_start", json=body, headers=headers)


async def test_other_dialects_get_the_default_anthropic_version(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """An OpenAI client sends no anthropic-version; Anthropic rejects requests without one."""
    fake, base = upstream
    proxy = await start_proxy(claude_keys(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    answer = await sdk.chat.completions.create(model="claude-fake-1", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    (seen,) = fake.seen
    assert seen.header("anthropic-version") == "2023-06-01"
    assert_upstream_auth(seen.headers)
