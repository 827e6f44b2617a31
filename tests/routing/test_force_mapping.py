"""`force-mapping`, model `auto` and `passthrough-headers` through the real app, with the official SDKs.

With `force-mapping: true` an alias's answers (whole and streamed, in every dialect) name the alias
the client asked for; without it they name the upstream's model, as CLIProxyAPI does.
"""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


def config(base: str) -> str:
    def models(name: str) -> str:
        return (
            f"    models:\n      - {{name: {name}, alias: mapped, force-mapping: true}}\n"
            f"      - {{name: {name}, alias: plain}}\n"
        )

    return (
        f"claude-api-key:\n  - api-key: sk-c\n    base-url: {base}\n    prefix: c\n{models('claude-fake-1')}"
        f"codex-api-key:\n  - api-key: sk-x\n    base-url: {base}/v1\n    prefix: x\n{models('gpt-fake')}"
        f"gemini-api-key:\n  - api-key: g1\n    base-url: {base}\n    prefix: g\n{models('gemini-fake')}"
        f"openai-compatibility:\n  - name: fakeco\n    base-url: {base}/v1\n    prefix: o\n"
        f"    api-key-entries: [{{api-key: sk-o}}]\n{models('gpt-fake')}"
    )


async def test_claude_answers_whole_and_streamed(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    sdk = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    ask = {"max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    assert (await sdk.messages.create(model="c/mapped", **ask)).model == "c/mapped"  # type: ignore[call-overload]
    assert (await sdk.messages.create(model="c/plain", **ask)).model == "claude-fake-1"  # type: ignore[call-overload]
    async with sdk.messages.stream(model="c/mapped", **ask) as stream:  # type: ignore[arg-type]
        message = await stream.get_final_message()
    assert message.model == "c/mapped" and message.content[0].text  # type: ignore[union-attr]


async def test_openai_chat_and_responses(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    messages = [{"role": "user", "content": "x"}]
    assert (await sdk.chat.completions.create(model="o/mapped", messages=messages)).model == "o/mapped"  # type: ignore[arg-type]
    assert (await sdk.chat.completions.create(model="o/plain", messages=messages)).model == "gpt-fake"  # type: ignore[arg-type]
    chunks = [c async for c in await sdk.chat.completions.create(model="o/mapped", messages=messages, stream=True)]  # type: ignore[arg-type]
    assert chunks and {c.model for c in chunks} == {"o/mapped"}
    assert (await sdk.responses.create(model="x/mapped", input="x")).model == "x/mapped"
    events = [e async for e in await sdk.responses.create(model="x/mapped", input="x", stream=True)]
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and completed[0].response.model == "x/mapped"  # type: ignore[union-attr]
    # translated answers name what the client asked for (chat client, Claude upstream)
    assert (await sdk.chat.completions.create(model="c/mapped", messages=messages)).model == "c/mapped"  # type: ignore[arg-type]


async def test_gemini_model_version(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    client = genai.Client(api_key=CLIENT_KEY, http_options=genai_types.HttpOptions(base_url=proxy.url))
    result = await client.aio.models.generate_content(model="g/mapped", contents="x")
    assert result.model_version == "g/mapped"
    plain = await client.aio.models.generate_content(model="g/plain", contents="x")
    assert plain.model_version == "gemini-fake"
    streamed = [c async for c in await client.aio.models.generate_content_stream(model="g/mapped", contents="x")]
    assert streamed and all(c.model_version in (None, "g/mapped") for c in streamed)
    assert any(c.model_version == "g/mapped" for c in streamed)


async def test_auto_resolves_to_the_first_available_model(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    text = (
        f"openai-compatibility:\n  - name: one\n    base-url: {base}/v1\n    api-key-entries: [{{api-key: sk-1}}]\n"
        f"    models: [{{name: first-model}}]\n  - name: two\n    base-url: {base}/v1\n"
        f"    api-key-entries: [{{api-key: sk-2}}]\n    models: [{{name: second-model}}]\n"
    )
    proxy = await start_proxy(text, clock=clock)
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    await sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert fake.seen[-1].json["model"] == "first-model"
    fake.fail(429, key="sk-1", times=0)
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    # the first model's only credential is cooling down now: `auto` takes the first model still available
    await sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert fake.seen[-1].json["model"] == "second-model"


async def _post(proxy: Proxy, path: str, body: dict[str, object]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(proxy.url + path, json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        await resp.read()
        return resp


async def test_passthrough_headers(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    fake.answer_headers = {
        "X-Ratelimit-Remaining-Requests": "41",
        "Openai-Processing-Ms": "12",
        "Set-Cookie": "a=b",
        "X-Litellm-Key": "leak",
        "Access-Control-Allow-Origin": "https://elsewhere.example",
        "Cache-Control": "private",
    }
    body = {"model": "o/plain", "messages": [{"role": "user", "content": "x"}]}
    off = await start_proxy(config(base))
    resp = await _post(off, "/v1/chat/completions", body)
    assert "X-Ratelimit-Remaining-Requests" not in resp.headers  # off by default
    on = await start_proxy(config(base) + "passthrough-headers: true\n")
    for stream in (False, True):
        resp = await _post(on, "/v1/chat/completions", {**body, "stream": stream})
        assert resp.status == 200
        assert resp.headers["X-Ratelimit-Remaining-Requests"] == "41" and resp.headers["Openai-Processing-Ms"] == "12"
        assert "Set-Cookie" not in resp.headers and "X-Litellm-Key" not in resp.headers
        assert resp.headers.get("Access-Control-Allow-Origin") == "*"  # the proxy's own CORS stays
        assert resp.headers.getall("Cache-Control") == (["no-cache"] if stream else ["private"])
