"""`ws-auth`: `/v1/ws` follows it, other `/v1` WebSockets always need a client key."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.config.write import atomic_write_text
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory

KEY = "sk-ws-client-key-1234"


def config(ws_auth: bool) -> str:
    return f"host: 127.0.0.1\napi-keys: [{KEY}]\nws-auth: {str(ws_auth).lower()}\n"


async def set_ws_auth(server: TestServer, value: bool) -> None:
    atomic_write_text(server.app[SERVICES].holder.current.config_path, config(value))
    status = await server.app[SERVICES].reloader.reload_now()
    assert status.ok, status.message


async def ping(ws: aiohttp.ClientWebSocketResponse, ident: str) -> None:
    await ws.send_json({"type": "ping", "id": ident})
    assert await ws.receive_json(timeout=5) == {"id": ident, "type": "pong"}


@pytest.mark.parametrize("path", ["/v1/responses", "/backend-api/codex/responses"])
@pytest.mark.parametrize("ws_auth", [True, False])
async def test_responses_websocket_needs_a_key_before_upgrade(proxy: ProxyFactory, path: str, ws_auth: bool) -> None:
    server = await proxy(config(ws_auth))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.make_url(path))
        assert info.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.make_url(path), headers={"Authorization": "Bearer wrong"})
        assert info.value.status == 401


async def test_ws_auth_true_requires_the_key(proxy: ProxyFactory) -> None:
    server = await proxy(config(True))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.make_url("/v1/ws"))
        assert info.value.status == 401
        async with session.ws_connect(server.make_url("/v1/ws"), headers={"Authorization": f"Bearer {KEY}"}) as ws:
            await ping(ws, "a1")


async def test_ws_auth_false_is_open_until_enabled_by_reload(proxy: ProxyFactory) -> None:
    server = await proxy(config(False))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/v1/ws"))
        await ping(ws, "b1")
        await set_ws_auth(server, True)
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.make_url("/v1/ws"))
        assert info.value.status == 401


async def test_switching_ws_auth_off_keeps_sessions(proxy: ProxyFactory) -> None:
    server = await proxy(config(True))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.make_url("/v1/ws"), headers={"x-api-key": KEY}) as ws,
    ):
        await set_ws_auth(server, False)
        await ping(ws, "c1")
        async with session.ws_connect(server.make_url("/v1/ws")) as anonymous:
            await ping(anonymous, "c2")
