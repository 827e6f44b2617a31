"""`upstream-timeouts` through the running proxy, against a raw-socket upstream that stalls.

An upstream that accepts and never answers, or answers and goes silent, must not hold a client: before
the answer is committed the attempt fails like a 504 (cooldown, next credential), with nothing left
the client gets 504 in its dialect; a committed stream ends with the dialect's error event, which the
official SDKs raise. Client keep-alives never keep a silent upstream alive.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.dialects import DIALECTS, ask, provider
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.raw import (
    SSE_HEAD,
    STREAM_EVENTS,
    RawRequest,
    RawUpstream,
    Script,
    chunk,
    dialect_of,
    good_answer,
    is_stream,
)

FAST = "upstream-timeouts: {first-byte-seconds: 0.4, idle-seconds: 0.4}\n"
HOLD = 30.0  # how long a stalled upstream stays silent: far past every bound set here


def stall_first(upstream: RawUpstream) -> Script:
    """The first request the upstream receives is never answered; every later one is answered well."""

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if upstream.requests[0] is request:
            await request.hold(HOLD)
            return
        await good_answer(request, writer)

    return script


async def stall_always(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    await request.hold(HOLD)


async def head_then_silence(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """The head (and for a stream the first events), then nothing: the answer has started."""
    if is_stream(request):
        events = STREAM_EVENTS[dialect_of(request)]
        writer.write(SSE_HEAD + b"".join(chunk(e) for e in events[:2]))
    else:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"id":')
    await writer.drain()
    await request.hold(HOLD)


def comments_first(upstream: RawUpstream) -> Script:
    """The first request gets a stream's head and keep-alive comments but never an event."""

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if upstream.requests[0] is not request:
            await good_answer(request, writer)
            return
        await comments_forever(writer)

    return script


async def comments_forever(writer: asyncio.StreamWriter) -> None:
    writer.write(SSE_HEAD + chunk(b": ping\n\n"))
    await writer.drain()
    for _ in range(int(HOLD * 5)):
        await asyncio.sleep(0.2)
        writer.write(chunk(b": ping\n\n"))
        await writer.drain()


@pytest.fixture
async def raw() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(stall_always)
    upstream.script = stall_first(upstream)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_upstream_that_never_answers_fails_over(
    dialect: str, stream: bool, raw: RawUpstream, start_proxy: Starter
) -> None:
    proxy = await start_proxy(FAST + provider(dialect, raw.base, ("sk-up-a", "sk-up-b")))
    outcome = await ask(proxy, dialect, stream=stream)
    assert outcome.status is None and outcome.text, outcome
    assert len(raw.requests) == 2  # the silent one once, then the next credential
    (cooldown,) = proxy.health.snapshot()
    assert (cooldown.status, cooldown.reason) == (504, "transient")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_with_every_credential_silent_the_client_gets_504_in_its_dialect(
    dialect: str, stream: bool, raw: RawUpstream, start_proxy: Starter
) -> None:
    raw.script = stall_always
    proxy = await start_proxy(FAST + provider(dialect, raw.base, ("sk-up-a", "sk-up-b")))
    outcome = await ask(proxy, dialect, stream=stream)
    assert outcome.status == 504, outcome
    assert len(raw.requests) == 2
    assert proxy.usage.recent()[-1].status == 504


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_stream_with_no_event_in_time_fails_over(dialect: str, raw: RawUpstream, start_proxy: Starter) -> None:
    """Comments do not count as a first event: the first-byte bound of a stream ends at its first event."""
    raw.script = comments_first(raw)
    proxy = await start_proxy(FAST + provider(dialect, raw.base, ("sk-up-a", "sk-up-b")))
    outcome = await ask(proxy, dialect, stream=True)
    assert outcome.status is None and outcome.text, outcome
    assert len(raw.requests) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_whole_answer_that_goes_silent_is_504(dialect: str, raw: RawUpstream, start_proxy: Starter) -> None:
    raw.script = head_then_silence
    proxy = await start_proxy(FAST + provider(dialect, raw.base))
    outcome = await ask(proxy, dialect)
    assert outcome.status == 504, outcome


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_committed_stream_that_goes_silent_ends_with_the_dialects_error(
    dialect: str, raw: RawUpstream, start_proxy: Starter
) -> None:
    """The official SDK raises on the in-band error event, and the usage record says 504."""
    raw.script = head_then_silence
    proxy = await start_proxy(FAST + provider(dialect, raw.base))
    outcome = await ask(proxy, dialect, stream=True)
    assert outcome.text is None and outcome.error, outcome
    assert "went silent" in outcome.error
    for _ in range(100):
        if proxy.usage.recent():
            break
        await asyncio.sleep(0.02)
    assert proxy.usage.recent()[-1].status == 504
    await asyncio.wait_for(raw.closed.wait(), 5)  # the silent upstream connection was closed, not kept


async def post_raw(url: str, path: str, body: dict[str, object]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        http.post(url + path, json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as resp,
    ):
        return resp.status, await resp.read()


async def test_keep_alives_do_not_keep_a_silent_upstream_alive(raw: RawUpstream, start_proxy: Starter) -> None:
    """With both keep-alives on (fractions of a second), the client still gets its answer when the
    upstream's bounds run out: the newlines then the 504 error object, the comments then the error
    event."""
    raw.script = stall_always
    keepalives = "streaming: {keepalive-seconds: 0.1}\nnonstream-keepalive-interval: 0.1\n"
    keepalives += "transient-error-cooldown-seconds: -1\n"  # the second request must reach the upstream too
    proxy = await start_proxy(FAST + keepalives + provider("claude", raw.base))
    body: dict[str, object] = {"model": "up-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    status, answer = await post_raw(proxy.url, "/v1/messages", body)
    assert status == 200 and answer.startswith(b"\n")
    error = json.loads(answer)
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    raw.script = head_then_silence
    status, answer = await post_raw(proxy.url, "/v1/messages", {**body, "stream": True})
    assert status == 200 and b": keep-alive" in answer
    assert answer.rstrip().endswith(b"}") and b"event: error" in answer and b"timeout_error" in answer


async def test_the_responses_websocket_gets_the_504_in_band(raw: RawUpstream, start_proxy: Starter) -> None:
    raw.script = stall_always
    proxy = await start_proxy(FAST + provider("responses", raw.base))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            proxy.url.replace("http", "ws") + "/v1/responses", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as ws,
    ):
        await ws.send_str(json.dumps({"type": "response.create", "model": "up-model", "input": "hi"}))
        event = json.loads(await asyncio.wait_for(ws.receive_str(), 20))
        assert event["type"] == "error" and event["status"] == 504
        await ws.send_str(json.dumps({"type": "response.create", "model": "up-model", "input": "again"}))
        assert json.loads(await asyncio.wait_for(ws.receive_str(), 20))["status"] in (429, 504)  # socket still open


async def test_an_entrys_own_bounds_override_the_top_level(raw: RawUpstream, start_proxy: Starter) -> None:
    """The top-level first-byte bound is far beyond the client's patience; the entries' own is short."""
    top = "upstream-timeouts: {first-byte-seconds: 120}\n"
    entries = (
        f"claude-api-key:\n"
        f"  - {{api-key: sk-up-a, base-url: {raw.base}, models: [{{name: up-model}}],"
        f" upstream-timeouts: {{first-byte-seconds: 0.3}}}}\n"
        f"  - {{api-key: sk-up-b, base-url: {raw.base}, models: [{{name: up-model}}],"
        f" upstream-timeouts: {{first-byte-seconds: 0.3}}}}\n"
    )
    proxy = await start_proxy(top + entries)
    outcome = await ask(proxy, "claude")
    assert outcome.status is None and outcome.text, outcome
    assert len(raw.requests) == 2
