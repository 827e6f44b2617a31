"""Answers that are not what they claim, through the running proxy: bogus retry hints, 200s that are
not answers, and secrets an upstream echoes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.fakes.dialects import DIALECTS, ask, provider
from tests.fakes.fixtures import Clock, Starter
from tests.fakes.raw import RawRequest, RawUpstream, Script, good_answer, http_answer, is_stream

UP_KEY = "sk-up-a-0123456789abcdef"


@pytest.fixture
async def raw() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(good_answer)
    await upstream.start()
    yield upstream
    await upstream.stop()


def first_then_good(upstream: RawUpstream, answer: bytes) -> Script:
    """The first request gets `answer`; every later one a good answer of its dialect."""

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if upstream.requests[0] is request:
            writer.write(answer)
            await writer.drain()
            return
        await good_answer(request, writer)

    return script


def always(answer: bytes) -> Script:
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    return script


RATE_LIMITED = b'{"error":{"message":"slow down","type":"rate_limit_error"}}'


@pytest.mark.parametrize("hint", ["inf", "-inf", "nan", "-5", "1e999", "soon", "Thu, 01 Jan 99999 00:00:00 GMT"])
async def test_a_bogus_retry_after_is_ignored_and_never_a_500(
    hint: str, raw: RawUpstream, start_proxy: Starter
) -> None:
    """The hint is ignored (the 1 s backoff applies), and the next requests are served normally."""
    clock = Clock()
    raw.script = always(http_answer(RATE_LIMITED, status="429 Too Many Requests", extra=f"Retry-After: {hint}\r\n"))
    proxy = await start_proxy(provider("chat", raw.base, (UP_KEY,)), clock=clock)
    first = await ask(proxy, "chat")
    assert first.status == 429
    (cooldown,) = proxy.health.snapshot()
    assert cooldown.seconds == 1.0  # the backoff's first step, not the hint
    cooling = await ask(proxy, "chat")  # the model is cooling down: 429 with a sane Retry-After, not a 500
    assert cooling.status == 429 and "cooling down" in cooling.error
    clock.advance(2)
    raw.script = good_answer
    assert (await ask(proxy, "chat")).text


async def test_a_hint_of_weeks_is_capped_by_max_cooldown_seconds(raw: RawUpstream, start_proxy: Starter) -> None:
    clock = Clock()
    weeks = str(21 * 86_400)
    raw.script = always(http_answer(RATE_LIMITED, status="429 Too Many Requests", extra=f"Retry-After: {weeks}\r\n"))
    proxy = await start_proxy("max-cooldown-seconds: 90\n" + provider("chat", raw.base, (UP_KEY,)), clock=clock)
    assert (await ask(proxy, "chat")).status == 429
    (cooldown,) = proxy.health.snapshot()
    assert cooldown.seconds == 90


@pytest.mark.parametrize(
    "body",
    [
        b'{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":'
        b'"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e999s"}]}}',
        b'{"error":{"type":"usage_limit_reached","message":"limit","resets_in_seconds":-40}}',
        b'{"error":{"message":"try again after 99999999999999999999999h","type":"rate_limit_error"}}',
    ],
    ids=["google-retry-info", "codex-negative", "after-huge"],
)
async def test_hints_in_bodies_are_sanitised_and_capped(body: bytes, raw: RawUpstream, start_proxy: Starter) -> None:
    clock = Clock()
    raw.script = always(http_answer(body, status="429 Too Many Requests"))
    proxy = await start_proxy("max-cooldown-seconds: 600\n" + provider("chat", raw.base, (UP_KEY,)), clock=clock)
    assert (await ask(proxy, "chat")).status == 429
    (cooldown,) = proxy.health.snapshot()
    assert 0 < cooldown.seconds <= 600


HTML = http_answer(b"<!doctype html><title>Just a moment...</title>", content_type="text/html")
TRUNCATED = http_answer(b'{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Hel')


@pytest.mark.parametrize("garbage", [HTML, TRUNCATED], ids=["html-challenge", "truncated-json"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_200_that_is_not_an_answer_fails_over(
    dialect: str, garbage: bytes, raw: RawUpstream, start_proxy: Starter
) -> None:
    raw.script = first_then_good(raw, garbage)
    proxy = await start_proxy(provider(dialect, raw.base, (UP_KEY, "sk-up-b-0123456789abcdef")))
    outcome = await ask(proxy, dialect)
    assert outcome.status is None and outcome.text, outcome
    assert len(raw.requests) == 2
    (cooldown,) = proxy.health.snapshot()
    assert (cooldown.status, cooldown.reason) == (502, "transient")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_with_only_garbage_left_the_client_gets_502_in_its_dialect(
    dialect: str, raw: RawUpstream, start_proxy: Starter
) -> None:
    raw.script = always(HTML)
    proxy = await start_proxy(provider(dialect, raw.base, (UP_KEY,)))
    outcome = await ask(proxy, dialect)
    assert outcome.status == 502, outcome
    assert "not a JSON object" in outcome.error


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_stream_answered_without_sse_fails_over(dialect: str, raw: RawUpstream, start_proxy: Starter) -> None:
    """A stream answered as `application/json` (a proxy's error page, a cached answer) is not relayed."""

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if raw.requests[0] is request and is_stream(request):
            writer.write(http_answer(b'{"id":"not a stream"}'))
            await writer.drain()
            return
        await good_answer(request, writer)

    raw.script = script
    proxy = await start_proxy(provider(dialect, raw.base, (UP_KEY, "sk-up-b-0123456789abcdef")))
    outcome = await ask(proxy, dialect, stream=True)
    assert outcome.status is None and outcome.text, outcome
    assert len(raw.requests) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_key_the_upstream_echoes_back_is_masked(dialect: str, raw: RawUpstream, start_proxy: Starter) -> None:
    """A 401 body that quotes the key it was sent reaches the client with the key masked."""
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {UP_KEY}", "type": "invalid_request_error"}})
    raw.script = always(http_answer(echo.encode(), status="401 Unauthorized"))
    proxy = await start_proxy("disable-cooling: true\n" + provider(dialect, raw.base, (UP_KEY,)))
    for stream in (False, True):
        outcome = await ask(proxy, dialect, stream=stream)
        assert outcome.status == 401, outcome
        assert UP_KEY not in outcome.error and "sk-…cdef" in outcome.error


async def test_a_key_echoed_in_an_error_reaches_the_websocket_masked(raw: RawUpstream, start_proxy: Starter) -> None:
    import aiohttp

    from tests.fakes.fixtures import CLIENT_KEY

    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {UP_KEY}", "type": "invalid_request_error"}})
    raw.script = always(http_answer(echo.encode(), status="401 Unauthorized"))
    proxy = await start_proxy(provider("responses", raw.base, (UP_KEY,)))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            proxy.url.replace("http", "ws") + "/v1/responses", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as ws,
    ):
        await ws.send_str(json.dumps({"type": "response.create", "model": "up-model", "input": "hi"}))
        frame = await asyncio.wait_for(ws.receive_str(), 20)
    event = json.loads(frame)
    assert event["type"] == "error" and event["status"] == 401
    assert UP_KEY not in frame and "sk-…cdef" in frame
