"""WebSocket mode driven by a bare `websockets` client: framing, errors, close codes, many sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import websockets

from cliproxy.api.responses_ws import RESPONSES_SOCKETS
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream, events_of, wire_body
from tests.ws.helpers import TOOL, codex_config, raw_connect, turn, user

CREATE = {"type": "response.create", "model": "gpt-fake", "input": "hi"}  # a plain first turn


async def begin_response(ws: Any) -> None:
    """Ask for a response and wait for its first event (the fake upstream then holds or goes on)."""
    await ws.send(json.dumps(CREATE))
    assert json.loads(await ws.recv())["type"] == "response.created"


async def test_upgrade_accepts_permessage_deflate_query_keys_and_the_codex_path(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(
        proxy,
        f"/backend-api/codex/responses?key={CLIENT_KEY}",
        additional_headers={"x-codex-turn-state": "ts-1", "OpenAI-Beta": "responses_websockets=2026-02-06"},
    ) as ws:
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers["x-codex-turn-state"] == "ts-1"
        events = await turn(ws, {"type": "response.create", "model": "gpt-fake", "input": "hi", "stream": True})
    wire = [json.loads(e.split(b"data: ", 1)[1]) for e in events_of(wire_body("openai_responses_stream.txt"))]
    assert events == wire  # each upstream event's data, one text frame each, in order
    (seen,) = fake.seen
    assert seen.json["input"] == "hi" and seen.json["stream"] is True and "type" not in seen.json
    assert seen.header("OpenAI-Beta") is None  # the WebSocket beta flag is not for an HTTP upstream


async def test_plain_get_is_told_to_upgrade(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with (
        aiohttp.ClientSession() as http,
        http.get(proxy.url + "/v1/responses", headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as resp,
    ):
        assert resp.status == 426
        assert (await resp.json())["error"]["message"].startswith("GET on this path is the Responses WebSocket")


@pytest.mark.parametrize(
    ("frame", "status", "message"),
    [
        ("{not json", 400, "websocket message is not valid JSON"),
        ("[1, 2]", 400, "websocket message must be a JSON object"),
        ('{"type": "response.cancel"}', 400, "unsupported websocket request type: response.cancel"),
        ('{"type": "response.append", "input": []}', 400, "websocket request received before response.create"),
        ('{"type": "response.create", "input": "hi"}', 400, "missing model in response.create request"),
        ('{"type": "response.create", "model": "gpt-fake", "input": 5}', 400, "requires array field: input"),
        ('{"type": "response.create", "model": "gpt-fake", "previous_response_id": "resp_x"}', 409, "not available"),
    ],
)
async def test_bad_frames_get_in_band_errors_and_the_socket_stays_open(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, frame: str, status: int, message: str
) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await ws.send(frame)
        event = json.loads(await ws.recv())
        assert event["type"] == "error" and event["status"] == status
        assert message in event["error"]["message"]
        assert {"message", "type", "code", "param"} <= event["error"].keys()
        events = await turn(ws, CREATE)
        assert events[-1]["type"] == "response.completed"
    assert len(fake.seen) == 1


async def test_append_continues_the_last_response(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        first = await turn(ws, {"type": "response.create", "model": "gpt-fake", "input": [user("a")]})
        await turn(ws, {"type": "response.append", "input": [user("b")]})
    answer = first[-1]["response"]["output"][0]
    assert fake.seen[1].json["input"] == [user("a"), answer, user("b")]
    assert fake.seen[1].json["model"] == "gpt-fake"


async def test_a_transcript_that_carries_history_replaces_instead_of_appending(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.tool_loop = True
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        first = await turn(ws, {"type": "response.create", "model": "gpt-fake", "input": [user("q")], "tools": [TOOL]})
        call = first[-1]["response"]["output"][0]
        result = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
        full = [user("q"), call, result]  # a client that resends everything (e.g. after compaction)
        frame = {"type": "response.create", "previous_response_id": first[-1]["response"]["id"], "input": full}
        await turn(ws, frame)
    assert fake.seen[1].json["input"] == full


async def test_failover_before_the_first_event_is_invisible(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.fail(500)  # whichever credential is picked first fails
    proxy = await start_proxy(codex_config(base, "sk-a", "sk-b"))
    async with raw_connect(proxy) as ws:
        events = await turn(ws, CREATE)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    keys = [s.header("Authorization") for s in fake.seen]
    assert len(keys) == 2 and set(keys) == {"Bearer sk-a", "Bearer sk-b"}


async def test_a_stream_that_stops_early_ends_with_an_error_event(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    partial = b"".join(events_of(wire_body("openai_responses_stream.txt"))[:2])  # created, in_progress
    fake.fail(200, body=partial)
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        events = await turn(ws, CREATE)
        assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error"]
        assert events[-1]["status"] == 502
        # the unfinished response is not chainable
        await ws.send(json.dumps({"type": "response.create", "previous_response_id": events[0]["response"]["id"]}))
        assert json.loads(await ws.recv())["status"] == 409
        again = await turn(ws, CREATE)
        assert again[-1]["type"] == "response.completed"


async def test_upstream_message_too_big_closes_with_1009(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    message = "Request too large: " + "x" * 200
    error = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "message_too_big"}}
    fake.fail(413, body=json.dumps(error).encode())
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await ws.send(json.dumps(CREATE))
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert info.value.rcvd.reason == message[:123]


async def test_twenty_sockets_at_once_keep_their_own_conversations(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.fresh_response_ids = True
    proxy = await start_proxy(codex_config(base))

    async def conversation(n: int) -> None:
        async with raw_connect(proxy) as ws:
            first = await turn(ws, {"type": "response.create", "model": "gpt-fake", "input": [user(f"hello {n}")]})
            frame = {"type": "response.create", "previous_response_id": first[-1]["response"]["id"]}
            second = await turn(ws, {**frame, "input": [user(f"again {n}")]})
            assert second[-1]["type"] == "response.completed"

    await asyncio.gather(*(conversation(n) for n in range(20)))
    assert len(fake.seen) == 40
    chained = {json.dumps(s.json["input"][0]): s.json["input"] for s in fake.seen if len(s.json["input"]) == 3}
    assert len(chained) == 20
    for n in range(20):
        items = chained[json.dumps(user(f"hello {n}"))]
        assert items[1]["role"] == "assistant" and items[2] == user(f"again {n}")


async def test_shutdown_closes_idle_sockets_with_1001(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await turn(ws, CREATE)
        await proxy.server.close()
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_an_upstream_error_after_the_first_event_is_forwarded_in_band(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    created = events_of(wire_body("openai_responses_stream.txt"))[0]
    error = {"type": "error", "code": "server_error", "message": "boom", "param": None, "sequence_number": 1}
    fake.fail(200, body=created + b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        events = await turn(ws, CREATE)
        assert [e["type"] for e in events] == ["response.created", "error"]
        assert events[-1] == error  # the dialect's own error event, untouched
        again = await turn(ws, CREATE)
        assert again[-1]["type"] == "response.completed"


async def test_a_client_that_leaves_mid_response_releases_the_upstream(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.hold = True
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await begin_response(ws)
    await asyncio.wait_for(fake.closed.wait(), 10)
    for _ in range(100):
        if len(proxy.usage):
            break
        await asyncio.sleep(0.05)
    (record,) = proxy.usage
    assert record.status == 499


async def test_pings_are_answered_while_a_response_streams(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """The socket is read while a response streams (a reader task), so client keepalives never
    wait for the turn to end (the websockets client would drop the connection after 20 s + 20 s)."""
    fake, base = upstream
    fake.hold = True  # the upstream stalls for 30 s after its first event
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await begin_response(ws)
        pong = await ws.ping()
        await asyncio.wait_for(pong, 10)


async def test_shutdown_lets_a_streaming_response_finish_then_closes(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    fake.hold = True
    proxy = await start_proxy(codex_config(base))
    async with raw_connect(proxy) as ws:
        await begin_response(ws)
        sockets = proxy.server.app[RESPONSES_SOCKETS].open
        closing = asyncio.ensure_future(proxy.server.close())
        for _ in range(200):  # shutdown has begun while the response is still streaming
            if any(sock.draining and sock.busy for sock in sockets):
                break
            await asyncio.sleep(0.01)
        assert any(sock.draining and sock.busy for sock in sockets)
        fake.resume.set()
        events = [json.loads(await ws.recv())]
        while events[-1]["type"] != "response.completed":
            events.append(json.loads(await ws.recv()))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            await ws.recv()
        await closing
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello from fake"
