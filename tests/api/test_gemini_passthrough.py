"""Gemini passthrough: the `google-genai` SDK → cliproxy → `gemini-api-key` / `vertex-api-key` fakes.

The Gemini body carries no model, so passthrough forwards it byte for byte and puts the upstream
model in the URL. google-genai 3.x defaults to `/v1/models/...`, 1.x (and `api_version="v1beta"`)
to `/v1beta/models/...`; both must work. Gemini SSE never ends with `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter, hang_up_mid_stream, provider_yaml
from tests.fakes.upstreams import FakeUpstream, wire_body

UP_KEY = "AIza-up-gemini-1"
TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="weather",
            parameters=types.Schema(
                type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
            ),
        )
    ]
)
RAW_REQUEST = (
    b'{"contents": [{"parts": [{"text": "hi \\u00e9"}, {"thought": true, "thoughtSignature": "c2lnbmF0dXJl"}],'
    b' "role": "user"}], "generationConfig": {"thinkingConfig": {"thinking_budget": 128}},'
    b' "x_unknown": {"keep": [1, 2]}}'
)


def gemini_keys(base: str, *, keys: tuple[str, ...] = (UP_KEY,), models: str = "", section: str = "gemini") -> str:
    models = models or "      - name: gemini-fake\n"
    return provider_yaml(f"{section}-api-key", base, keys, models)


def client(proxy: Proxy, api_version: str | None = "v1beta") -> genai.Client:
    options = types.HttpOptions(base_url=proxy.url, api_version=api_version) if api_version else None
    if options is None:
        options = types.HttpOptions(base_url=proxy.url)
    return genai.Client(api_key=CLIENT_KEY, http_options=options)


async def post(proxy: Proxy, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    headers = {"x-goog-api-key": CLIENT_KEY, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(proxy.url + path, data=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def assert_upstream_auth(headers: dict[str, str], key: str = UP_KEY) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-goog-api-key"] == key
    assert "authorization" not in lowered
    assert CLIENT_KEY not in json.dumps(headers)


@pytest.mark.parametrize("api_version", ["v1beta", None])
async def test_sdk_generate_both_api_versions(
    api_version: str | None, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    answer = await client(proxy, api_version).aio.models.generate_content(model="gemini-fake", contents="hi")
    assert answer.text == "Hello from fake"
    assert answer.usage_metadata is not None and answer.usage_metadata.total_token_count == 8
    (seen,) = fake.seen
    assert seen.path == "/v1beta/models/gemini-fake:generateContent"
    assert_upstream_auth(seen.headers)
    assert "google-genai-sdk" in str(seen.header("User-Agent"))
    (record,) = proxy.usage.recent()
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (5, 3, 8)
    assert record.client_dialect == record.upstream_dialect == "gemini"


@pytest.mark.parametrize("prefix", ["/v1beta", "/v1"])
async def test_raw_body_passes_byte_for_byte(
    prefix: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    status, _, body = await post(proxy, prefix + "/models/gemini-fake:generateContent", RAW_REQUEST)
    assert status == 200 and json.loads(body)["candidates"][0]["content"]["parts"][0]["text"] == "Hello from fake"
    assert fake.seen[0].body == RAW_REQUEST
    status, headers, body = await post(proxy, prefix + "/models/gemini-fake:streamGenerateContent?alt=sse", RAW_REQUEST)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert body == wire_body("gemini_stream.txt")  # Google's CRLF framing, relayed as is
    assert b"[DONE]" not in body
    seen = fake.seen[1]
    assert (seen.path, seen.query, seen.body) == (
        "/v1beta/models/gemini-fake:streamGenerateContent",
        {"alt": "sse"},
        RAW_REQUEST,
    )


@pytest.mark.parametrize("api_version", ["v1beta", None])
async def test_sdk_stream_and_count(
    api_version: str | None, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    sdk = client(proxy, api_version)
    chunks = [c.text async for c in await sdk.aio.models.generate_content_stream(model="gemini-fake", contents="hi")]
    assert chunks == ["Hello", " from", " fake"]
    counted = await sdk.aio.models.count_tokens(model="gemini-fake", contents="hi")
    assert counted.total_tokens == 7
    assert [s.path for s in fake.seen] == [
        "/v1beta/models/gemini-fake:streamGenerateContent",
        "/v1beta/models/gemini-fake:countTokens",
    ]
    for seen in fake.seen:
        assert_upstream_auth(seen.headers)
    record = proxy.usage.recent()[0]
    assert record.stream and record.total_tokens == 8


async def test_sync_client_stream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    """The synchronous SDK (httpx) as most scripts use it, in a thread so the loop keeps serving."""
    _, base = upstream
    proxy = await start_proxy(gemini_keys(base))

    sdk = client(proxy)  # held: the SDK closes its HTTP client when the object is collected

    def run() -> list[str | None]:
        return [c.text for c in sdk.models.generate_content_stream(model="gemini-fake", contents="hi")]

    assert await asyncio.to_thread(run) == ["Hello", " from", " fake"]


async def test_tool_calls_stream_and_not(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    fake.tool_loop = True  # streams answer tool requests with the recorded function call
    proxy = await start_proxy(gemini_keys(base))
    sdk = client(proxy)
    config = types.GenerateContentConfig(tools=[TOOL])
    answer = await sdk.aio.models.generate_content(model="gemini-fake", contents="weather?", config=config)
    (call,) = answer.function_calls or []
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    calls = []
    async for chunk in await sdk.aio.models.generate_content_stream(
        model="gemini-fake", contents="weather?", config=config
    ):
        calls.extend(chunk.function_calls or [])
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    sent = fake.seen[0].json
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


async def test_alias_goes_into_the_url_only(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base, models="      - name: gemini-fake\n        alias: gem-nice\n"))
    status, _, _ = await post(proxy, "/v1beta/models/gem-nice:generateContent", RAW_REQUEST)
    assert status == 200
    assert fake.seen[0].path == "/v1beta/models/gemini-fake:generateContent"
    assert fake.seen[0].body == RAW_REQUEST


async def test_vertex_api_key(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base, keys=("vx-up-1",), section="vertex"))
    sdk = client(proxy)
    answer = await sdk.aio.models.generate_content(model="gemini-fake", contents="hi")
    assert answer.text == "Hello from fake"
    chunks = [c.text async for c in await sdk.aio.models.generate_content_stream(model="gemini-fake", contents="hi")]
    assert chunks == ["Hello", " from", " fake"]
    assert [s.path for s in fake.seen] == [
        "/v1/publishers/google/models/gemini-fake:generateContent",
        "/v1/publishers/google/models/gemini-fake:streamGenerateContent",
    ]
    for seen in fake.seen:
        assert_upstream_auth(seen.headers, "vx-up-1")


async def test_failover_and_retry_info_cooldown(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(gemini_keys(base, keys=("g-a", "g-b")), clock=clock)
    retry_info = json.dumps(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "33s"}],
            }
        }
    ).encode()
    fake.fail(429, body=retry_info)
    answer = await client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi")
    assert answer.text == "Hello from fake"
    assert len(fake.seen) == 2
    (cooldown,) = proxy.health.snapshot()
    assert cooldown.seconds == 33  # the RetryInfo hint, not the 1 s backoff


async def test_bad_request_not_retried_and_verbatim(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base, keys=("g-a", "g-b")))
    fake.fail(400, dialect="gemini", times=0)
    with pytest.raises(errors.ClientError) as caught:
        await client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == "fake upstream error 400"
    assert len(fake.seen) == 1


async def test_all_cooling_is_gemini_429_with_retry_after(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(gemini_keys(base), clock=clock)
    fake.fail(500, dialect="gemini")
    with pytest.raises(errors.ServerError):
        await client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi")
    status, headers, body = await post(proxy, "/v1beta/models/gemini-fake:generateContent", RAW_REQUEST)
    assert status == 429 and headers["Retry-After"] == "60"  # a 5xx cools the credential 60 s
    error = json.loads(body)["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert "All credentials for model gemini-fake are cooling down" in error["message"]
    with pytest.raises(errors.ClientError) as caught:
        await client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi")
    assert caught.value.code == 429
    assert len(fake.seen) == 1
    clock.advance(60)
    answer = await client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi")
    assert answer.text == "Hello from fake"


async def test_unknown_model_in_gemini_shape(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    with pytest.raises(errors.ClientError) as caught:
        await client(proxy).aio.models.generate_content(model="gemini-nope", contents="hi")
    assert caught.value.code == 400 and "gemini-nope" in str(caught.value.message)
    assert fake.seen == []


async def test_client_disconnect_cancels_upstream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    path = "/v1beta/models/gemini-fake:streamGenerateContent?alt=sse"
    headers = {"x-goog-api-key": CLIENT_KEY}
    await hang_up_mid_stream(proxy, fake, path, b"data: ", data=RAW_REQUEST, headers=headers)


def sse_payloads(body: bytes) -> list[object]:
    return [json.loads(line[len(b"data: ") :]) for line in body.splitlines() if line.startswith(b"data: ")]


@pytest.mark.parametrize("query", ["alt=json", "%24alt=json"])
async def test_alt_json_streams_one_json_array(
    query: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """Any `alt` but `sse` gets Google's REST framing: one JSON array of the chunks (upstream still SSE)."""
    fake, base = upstream
    proxy = await start_proxy(gemini_keys(base))
    status, headers, body = await post(proxy, f"/v1beta/models/gemini-fake:streamGenerateContent?{query}", RAW_REQUEST)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body.startswith(b"[{") and b"}\r\n,{" not in body and b"},\r\n{" in body
    assert json.loads(body) == sse_payloads(wire_body("gemini_stream.txt"))
    assert (fake.seen[0].query, fake.seen[0].body) == ({"alt": "sse"}, RAW_REQUEST)
    (record,) = proxy.usage.recent()
    assert record.stream and record.total_tokens == 8


async def test_alt_json_from_a_translated_stream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(provider_yaml("claude-api-key", base, ("sk-ant-up",), "      - name: gemini-fake\n"))
    status, _, body = await post(proxy, "/v1beta/models/gemini-fake:streamGenerateContent?alt=json", RAW_REQUEST)
    assert status == 200
    chunks = json.loads(body)
    parts = [p for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    assert text == "Hello from fake"
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
