"""OpenAI Responses passthrough: the `openai` SDK and a replayed Codex CLI request → cliproxy → a
`codex-api-key` fake upstream (`{base-url}/responses`, Bearer).

Responses SSE ends at its terminal event (`response.completed`), never with `[DONE]`; the
`responses.stream()` helper is strict about event order, so relaying the recorded stream
byte for byte is what keeps it happy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter, hang_up_mid_stream, provider_yaml
from tests.fakes.upstreams import RESPONSE, FakeUpstream, wire_body

UP_KEY = "sk-codex-up-1"
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"  # copies of ../shared/fixtures
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }
]
RAW_REQUEST = (
    b'{"model":"gpt-fake","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},'
    b'{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB+enc/=="}],'
    b'"reasoning":{"effort":"high","summary":"auto"},"store":false,"include":["reasoning.encrypted_content"],'
    b'"prompt_cache_key":"pck-1","x_unknown":{"keep":true}}'
)


def codex_keys(base: str, *, keys: tuple[str, ...] = (UP_KEY,), models: str = "", extra: str = "") -> str:
    models = models or "      - name: gpt-fake\n"
    return f"{extra}\n" + provider_yaml("codex-api-key", f"{base}/v1", keys, models)


def client(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


async def post(proxy: Proxy, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json", **headers}
    async with aiohttp.ClientSession() as http, http.post(proxy.url + path, data=body, headers=sent) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def assert_upstream_auth(headers: dict[str, str], key: str = UP_KEY) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["authorization"] == f"Bearer {key}"
    assert CLIENT_KEY not in json.dumps(headers)


def codex_capture() -> tuple[dict[str, str], bytes]:
    """The first POST the real Codex CLI 0.169 made in HTTP mode (headers and body as recorded)."""
    for line in (CAPTURES / "codex_exec_http.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item.get("method") == "POST":
            skip = {"host", "content-length", "authorization"}
            headers = {k: v for k, v in item["headers"] if k.lower() not in skip}
            return headers, json.dumps(item["body"]).encode()
    raise AssertionError("no POST in the capture")


async def test_sdk_non_stream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base))
    answer = await client(proxy).responses.create(model="gpt-fake", input="hi")
    assert answer.output_text == "Hello from fake"
    (seen,) = fake.seen
    assert seen.path == "/v1/responses"
    assert_upstream_auth(seen.headers)
    (record,) = proxy.usage.recent()
    assert (record.input_tokens, record.output_tokens, record.total_tokens) == (5, 3, 8)
    assert record.client_dialect == record.upstream_dialect == "responses"


async def test_raw_bytes_survive_both_ways(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base))
    status, _, body = await post(proxy, "/v1/responses", RAW_REQUEST, **{"OpenAI-Beta": "responses=experimental"})
    assert status == 200 and json.loads(body) == dict(RESPONSE, model="gpt-fake")
    assert fake.seen[0].body == RAW_REQUEST
    assert fake.seen[0].header("OpenAI-Beta") == "responses=experimental"
    streamed = RAW_REQUEST.replace(b'"store":false', b'"store":false,"stream":true')
    status, headers, body = await post(proxy, "/v1/responses", streamed)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert body == wire_body("openai_responses_stream.txt")
    assert body.rstrip().splitlines()[-2] == b"event: response.completed" and b"[DONE]" not in body
    assert fake.seen[1].body == streamed


async def test_sdk_stream_helper(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(codex_keys(base))
    async with client(proxy).responses.stream(model="gpt-fake", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "Hello from fake" == final.output_text
    events = [e.type async for e in await client(proxy).responses.create(model="gpt-fake", input="hi", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    record = proxy.usage.recent()[-1]
    assert record.stream and record.total_tokens == 8


async def test_tool_calls_stream_and_not(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base))
    sdk = client(proxy)
    fake.seen.clear()
    async with sdk.responses.stream(model="gpt-fake", input="weather?", tools=TOOLS) as stream:
        final = await stream.get_final_response()
    (item,) = final.output
    assert item.type == "function_call" and item.name == "get_weather"
    assert json.loads(item.arguments) == {"city": "Paris"}
    followup = await sdk.responses.create(
        model="gpt-fake",
        tools=TOOLS,
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_fake1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_fake1", "output": "sunny"},
        ],
    )
    assert followup.output_text == "Hello from fake"
    assert fake.seen[-1].json["input"][2] == {
        "type": "function_call_output",
        "call_id": "call_fake1",
        "output": "sunny",
    }


async def test_codex_cli_request_on_backend_api_path(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base))
    headers, body = codex_capture()
    headers["OpenAI-Beta"] = "responses=experimental"
    status, answer_headers, answer = await post(proxy, "/backend-api/codex/responses", body, **headers)
    assert status == 200 and answer_headers["Content-Type"].startswith("text/event-stream")
    assert answer == wire_body("openai_responses_stream_tool.txt")  # Codex sends tools
    (seen,) = fake.seen
    assert seen.path == "/v1/responses"
    assert seen.body == body
    assert seen.header("originator") == "codex_exec"
    assert str(seen.header("User-Agent")).startswith("codex_exec/0.169.0")
    assert seen.header("OpenAI-Beta") == "responses=experimental"
    assert seen.header("session-id") == headers["session-id"]  # Codex 0.169 spelling; upstream caches by it
    assert_upstream_auth(seen.headers)


async def test_failover_with_codex_usage_limit_hint(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(codex_keys(base, keys=("sk-cx-a", "sk-cx-b")), clock=clock)
    limit = b'{"error":{"type":"usage_limit_reached","message":"limit","resets_in_seconds":120}}'
    fake.fail(429, body=limit)
    answer = await client(proxy).responses.create(model="gpt-fake", input="hi")
    assert answer.output_text == "Hello from fake" and len(fake.seen) == 2
    (cooldown,) = proxy.health.snapshot()
    assert cooldown.seconds == 120
    clock.advance(120)  # both usable again; a 502 before the first byte moves a stream on too
    fake.fail(502, times=1)
    async with client(proxy).responses.stream(model="gpt-fake", input="hi") as stream:
        assert (await stream.get_final_response()).output_text == "Hello from fake"


async def test_bad_request_not_retried(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base, keys=("sk-cx-a", "sk-cx-b"), extra="request-retry: 2"))
    fake.fail(400, times=0)
    with pytest.raises(openai.BadRequestError) as caught:
        await client(proxy).responses.create(model="gpt-fake", input="hi")
    assert caught.value.body == {
        "message": "fake upstream error 400",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert len(fake.seen) == 1 and not proxy.health.snapshot()


async def test_all_cooling_is_openai_429_with_retry_after(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(codex_keys(base), clock=clock)
    fake.fail(429)
    with pytest.raises(openai.RateLimitError):
        await client(proxy).responses.create(model="gpt-fake", input="hi")
    status, headers, body = await post(proxy, "/v1/responses", RAW_REQUEST)
    assert status == 429 and headers["Retry-After"] == "1"
    error = json.loads(body)["error"]
    assert error["code"] == "model_cooldown" and error["model"] == "gpt-fake" and error["reset_seconds"] == 1
    status, _, _ = await post(proxy, "/backend-api/codex/responses", RAW_REQUEST)
    assert status == 429
    assert len(fake.seen) == 1
    clock.advance(1)
    assert (await client(proxy).responses.create(model="gpt-fake", input="hi")).output_text == "Hello from fake"


async def test_client_disconnect_cancels_upstream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_keys(base))
    body = {"model": "gpt-fake", "stream": True, "input": "hi"}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    await hang_up_mid_stream(proxy, fake, "/v1/responses", b"event: response.created", json=body, headers=headers)
