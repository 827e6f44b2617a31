"""`POST /api-call` over HTTP against a small echo server: `$TOKEN$` filled from the credential."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt
from tests.management.test_auth_files import claude_file

CONFIG = "host: 127.0.0.1\nauth-dir: ./auths\nclaude-api-key:\n  - api-key: sk-ant-api-call-key\n" + MANAGEMENT_BLOCK


@pytest.fixture
async def echo(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    async def handler(request: web.Request) -> web.Response:
        body = {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "data": (await request.read()).decode(),
        }
        return web.json_response(body, status=203, headers={"X-Echo": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def test_token_of_a_config_key_and_of_an_auth_file(proxy: ProxyFactory, echo: str, tmp_path: Path) -> None:
    (tmp_path / "auths").mkdir()
    (tmp_path / "auths" / "claude-a.json").write_text(json.dumps(claude_file("a@example.com")))
    mgmt = Mgmt(await proxy(CONFIG))
    (entry,) = (await mgmt.get("/claude-api-key")).json()["claude-api-key"]
    reply = await mgmt.post(
        "/api-call",
        json={
            "auth_index": entry["auth-index"],
            "method": "post",
            "url": f"{echo}/api/usage?x=1",
            "header": {"Authorization": "Bearer $TOKEN$", "Content-Type": "text/plain"},
            "data": "hello",
        },
    )
    assert reply.status == 200, reply
    answer = reply.json()
    assert answer["status_code"] == 203 and answer["header"]["X-Echo"] == ["yes"]
    echoed = json.loads(answer["body"])
    assert (echoed["method"], echoed["path"], echoed["data"]) == ("POST", "/api/usage?x=1", "hello")
    assert echoed["headers"]["Authorization"] == "Bearer sk-ant-api-call-key"

    (file_entry,) = (await mgmt.get("/auth-files?name=claude-a.json")).json()["files"]
    reply = await mgmt.post(
        "/api-call",
        json={"authIndex": file_entry["auth_index"], "method": "GET", "url": echo, "header": {"X-T": "$TOKEN$"}},
    )
    assert json.loads(reply.json()["body"])["headers"]["X-T"] == "FAKE-access-token"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ([], 400, "invalid body"),
        ({"url": "http://x"}, 400, "missing method"),
        ({"method": "GET"}, 400, "missing url"),
        ({"method": "GET", "url": "ftp://x/y"}, 400, "invalid url"),
        ({"method": "GET", "url": "http://x", "proxy_url": "gopher://p"}, 400, "invalid proxy_url"),
        ({"method": "GET", "url": "http://x", "header": {"A": "$TOKEN$"}}, 400, "auth token not found"),
        ({"method": "GET", "url": "http://127.0.0.1:9/", "proxy_url": "direct"}, 502, "request failed"),
    ],
)
async def test_errors(proxy: ProxyFactory, body: object, status: int, error: str) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    reply = await mgmt.post("/api-call", json=body)
    assert (reply.status, reply.json()["error"]) == (status, error)


async def test_viewers_may_not_call(proxy: ProxyFactory, echo: str) -> None:
    reply = await Mgmt(await proxy(CONFIG), key=VIEWER).post("/api-call", json={"method": "GET", "url": echo})
    assert reply.status == 403
