"""Upstream WebSocket mode: the openai SDK's `responses.connect()` bridged to a fake upstream socket.

Codex and xAI credentials with `websockets: true` carry a client's Responses WebSocket on their
own upstream WebSocket, never over HTTP: warm-ups are forwarded, turns chained to the upstream
socket's last response go out incrementally, and a failure before the first event moves on to
the next credential as on the HTTP path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter
from tests.fakes.oauth import fake_id_token
from tests.fakes.upstream_ws import FakeUpstreamSockets
from tests.providers.world import LATER, proxy_with, put
from tests.ws.helpers import TERMINAL, TOOL, user

DEVELOPER = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}


@pytest.fixture
async def sockets(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeUpstreamSockets, str]:
    fake = FakeUpstreamSockets()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def codex_keys(base: str, *keys: str) -> str:
    return "codex-api-key:\n" + "".join(
        f"  - api-key: {k}\n    base-url: {base}/v1\n    websockets: true\n    models: [{{name: gpt-ws}}]\n"
        for k in keys
    )


def sdk(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


async def until_terminal(conn: Any) -> list[Any]:
    events = []
    async for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            break
    return events


async def test_warm_up_and_chained_turns_ride_one_upstream_socket(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = sockets
    proxy = await proxy_with(start_proxy, tmp_path / "auths", codex_keys(base, "sk-codex-ws-a"))
    async with sdk(proxy).responses.connect() as conn:
        warm_up = {"type": "response.create", "model": "gpt-ws", "generate": False, "input": [DEVELOPER],
                   "tools": [TOOL]}  # fmt: skip
        await conn.send(warm_up)  # type: ignore[arg-type]
        warm = await until_terminal(conn)
        assert [e.type for e in warm] == ["response.created", "response.completed"]
        assert warm[-1].response.id.startswith("resp_ws")  # the upstream answered it, not the proxy

        await conn.response.create(previous_response_id=warm[-1].response.id, input=[user("weather in Paris?")])
        first = await until_terminal(conn)
        (call,) = first[-1].response.output
        assert call.type == "function_call" and call.name == "get_weather"

        result = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        await conn.response.create(previous_response_id=first[-1].response.id, input=[result])  # type: ignore[list-item]
        second = await until_terminal(conn)
        assert second[-1].type == "response.completed" and second[-1].response.output_text == "Hello from fake"

    assert fake.http_posts == 0
    frames = [f.body for f in fake.frames]
    assert len(frames) == 3 and len(fake.connections()) == 1
    assert frames[0]["generate"] is False and frames[0]["type"] == "response.create"
    # chained turns continue the upstream's own conversation: only the new input goes out
    assert frames[1]["previous_response_id"] == warm[-1].response.id and frames[1]["input"] == [
        user("weather in Paris?")
    ]
    assert frames[2]["previous_response_id"] == first[-1].response.id and frames[2]["input"] == [result]
    for frame in frames:
        assert frame["model"] == "gpt-ws" and "stream" not in frame
    (handshake,) = fake.handshakes
    assert handshake["Authorization"] == "Bearer sk-codex-ws-a"
    assert "responses_websockets=" in handshake["OpenAI-Beta"]
    assert len(proxy.usage.recent()) == 3


async def test_a_refused_handshake_fails_over_before_the_first_event(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = sockets
    fake.refuse["sk-codex-ws-a"] = 429
    clock = Clock()
    proxy = await proxy_with(start_proxy, tmp_path / "auths", codex_keys(base, "sk-codex-ws-a", "sk-codex-ws-b"), clock)
    async with sdk(proxy).responses.connect() as conn:
        for _ in range(2):  # round-robin: one turn starts on the refusing key
            await conn.response.create(model="gpt-ws", input="hi")
            events = await until_terminal(conn)
            assert events[-1].type == "response.completed"
    assert {f.headers["Authorization"] for f in fake.frames} == {"Bearer sk-codex-ws-b"}
    (cooling,) = proxy.health.snapshot()
    assert cooling.status == 429 and fake.http_posts == 0


async def test_an_error_event_first_fails_over_and_a_lost_socket_replays_the_transcript(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = sockets
    fake.error_first["sk-codex-ws-a"] = {"type": "error", "status": 429,
                                         "error": {"type": "rate_limit_error", "message": "slow down"}}  # fmt: skip
    fake.close_after_turn = True
    proxy = await proxy_with(start_proxy, tmp_path / "auths", codex_keys(base, "sk-codex-ws-a", "sk-codex-ws-b"))
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model="gpt-ws", input=[user("one")])
        first = await until_terminal(conn)
        assert first[-1].type == "response.completed"
        await conn.response.create(previous_response_id=first[-1].response.id, input=[user("two")])
        second = await until_terminal(conn)
        assert second[-1].type == "response.completed"
    served = [f for f in fake.frames if f.headers["Authorization"] == "Bearer sk-codex-ws-b"]
    assert len(served) == 2 and len({f.connection for f in served}) == 2  # the upstream closed after each turn
    replay = served[1].body
    assert "previous_response_id" not in replay  # a new socket knows nothing: the whole transcript goes
    assert replay["input"][0] == user("one") and replay["input"][-1] == user("two") and len(replay["input"]) == 3


async def test_xai_keys_store_turns_and_get_their_warm_up_completed(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = sockets
    extra = f"xai-api-key:\n  - api-key: xai-ws-key\n    base-url: {base}/xai/v1\n    websockets: true\n"
    extra += "    models: [{name: grok-ws}]\n"
    proxy = await proxy_with(start_proxy, tmp_path / "auths", extra)
    async with sdk(proxy).responses.connect() as conn:
        await conn.send({"type": "response.create", "model": "grok-ws", "generate": False, "instructions": "brief",
                         "input": []})  # type: ignore[arg-type]  # fmt: skip
        warm = await until_terminal(conn)
        assert [e.type for e in warm] == ["response.created", "response.completed"]  # completed made by the proxy
        assert warm[-1].response.status == "completed" and warm[-1].response.usage.total_tokens == 0
        await conn.response.create(previous_response_id=warm[-1].response.id, input="hi", instructions="brief")
        done = await until_terminal(conn)
        assert done[-1].response.output_text == "Hello from fake"
    first, second = (f.body for f in fake.frames)
    assert fake.frames[0].path == "/xai/v1/responses" and fake.http_posts == 0
    assert first["store"] is True and first["instructions"] == "brief"
    assert second["store"] is True and "instructions" not in second  # the upstream has them already
    assert second["previous_response_id"] == warm[-1].response.id


async def test_a_codex_login_with_websockets_uses_the_backends_socket(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = sockets
    fake.tokens.add("at-codex-ws")
    monkeypatch.setenv("CLIPROXY_CODEX_API_URL", f"{base}/backend-api/codex/responses")
    id_token = fake_id_token({"email": "w@x.com", "https://api.openai.com/auth": {"chatgpt_account_id": "acct-ws"}})
    auths = tmp_path / "auths"
    put(auths, "codex-w.json", {"type": "codex", "access_token": "at-codex-ws", "id_token": id_token,
                                "expired": LATER, "websockets": True})  # fmt: skip
    proxy = await proxy_with(start_proxy, auths)
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model="gpt-5-codex", input="hi", instructions="be brief")
        events = await until_terminal(conn)
        assert events[-1].response.output_text == "Hello from fake"
    (frame,) = fake.frames
    assert frame.path == "/backend-api/codex/responses"
    assert frame.headers["Chatgpt-Account-Id"] == "acct-ws" and frame.headers["Authorization"] == "Bearer at-codex-ws"
    assert frame.body["store"] is False and frame.body["instructions"] == "be brief"


async def test_an_idle_socket_the_upstream_closed_is_replaced_on_the_same_credential(
    sockets: tuple[FakeUpstreamSockets, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = sockets
    fake.close_after_turn = True  # the upstream drops every socket once its response is done
    proxy = await proxy_with(start_proxy, tmp_path / "auths", codex_keys(base, "sk-codex-ws-a"))
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model="gpt-ws", input=[user("one")])
        first = await until_terminal(conn)
        await conn.response.create(previous_response_id=first[-1].response.id, input=[user("two")])
        second = await until_terminal(conn)
        assert second[-1].type == "response.completed"
    assert len(fake.frames) == 2 and len(fake.connections()) == 2
    replay = fake.frames[1].body
    assert "previous_response_id" not in replay  # the new socket knows nothing: the whole transcript goes
    assert replay["input"][0] == user("one") and replay["input"][-1] == user("two") and len(replay["input"]) == 3
    assert proxy.health.snapshot() == []  # a closed idle socket is no failure of the credential
