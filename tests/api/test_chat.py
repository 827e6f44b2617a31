"""OpenAI chat passthrough through the real app with the official SDK against a fake upstream."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream, wire_body

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def compat(base: str, *, models: str = "", keys: tuple[str, ...] = ("sk-up-1",)) -> str:
    entries = "\n".join(f"      - api-key: {k}" for k in keys)
    models = models or "      - name: gpt-fake\n"
    return f"""
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
{entries}
    models:
{models}"""


def client(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


async def test_non_stream_passthrough_keeps_bytes_and_swaps_auth(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    raw = b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}], "x_vendor": {"a": 1}}'
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            data=raw,
            headers={"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"},
        ) as resp,
    ):
        assert resp.status == 200
        answer = await resp.json()
    assert answer["choices"][0]["message"]["content"] == "Hello from fake"
    (seen,) = fake.seen
    assert seen.body == raw  # untouched, including spacing and unknown fields
    assert seen.header("Authorization") == "Bearer sk-up-1"
    assert CLIENT_KEY not in json.dumps(seen.headers)


async def test_sdk_non_stream_and_usage_record(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _fake, base = upstream
    proxy = await start_proxy(compat(base))
    answer = await client(proxy).chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    (record,) = proxy.usage.recent()
    assert record.status == 200 and not record.failed
    assert (record.input_tokens, record.output_tokens, record.cached_tokens, record.reasoning_tokens) == (5, 3, 2, 1)
    assert record.total_tokens == 8
    assert record.model == "gpt-fake" and record.alias == "gpt-fake"
    assert record.client_dialect == "chat" and record.upstream_dialect == "chat"
    assert record.credential_id.startswith("openai-compatibility:fake:")
    assert record.client_key.endswith(CLIENT_KEY[-4:]) and CLIENT_KEY not in record.client_key


async def test_sdk_stream_relays_wire_bytes(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _fake, base = upstream
    proxy = await start_proxy(compat(base))
    stream = await client(proxy).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from fake"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        ) as resp,
    ):
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        body = await resp.read()
    assert body == wire_body("openai_chat_stream.txt")
    assert body.endswith(b"data: [DONE]\n\n")
    record = proxy.usage.recent()[-1]
    assert record.stream and record.total_tokens == 8 and record.ttft_ms is not None


async def test_tool_calls_stream_and_not(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(compat(base))
    sdk = client(proxy)
    answer = await sdk.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
    stream = await sdk.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
    )
    args, finish = "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                args += tc.function.arguments or ""  # type: ignore[union-attr]
            finish = choice.finish_reason or finish
    assert json.loads(args) == {"city": "Paris"} and finish == "tool_calls"


async def test_alias_rewrites_only_the_model_field(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, models="      - name: real-upstream-model\n        alias: nice\n"))
    raw = b'{"model":"nice","messages":[{"role":"user","content":"model \\"nice\\""}],"extra":1}'
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions", data=raw, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as resp,
    ):
        assert resp.status == 200
    assert fake.seen[0].body == raw.replace(b'"model":"nice"', b'"model":"real-upstream-model"')


async def test_unknown_model_is_a_dialect_error(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    with pytest.raises(openai.BadRequestError) as caught:
        await client(proxy).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "unknown provider for model nope" in str(caught.value)
    assert caught.value.code == "model_not_found"
    assert fake.seen == []


async def test_invalid_json_is_400(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(compat(base))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions", data=b"{nope", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_legacy_completions(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    answer = await client(proxy).completions.create(model="gpt-fake", prompt="Say hi")
    assert answer.object == "text_completion" and answer.choices[0].text == "Hello from fake"
    assert fake.seen[0].json["messages"] == [{"role": "user", "content": "Say hi"}]
    stream = await client(proxy).completions.create(model="gpt-fake", prompt="Say hi", stream=True)
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "Hello from fake"
