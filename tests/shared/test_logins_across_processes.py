"""Two real proxy processes sharing one real Redis: brute-force limits and sign-ins in progress hold
across them (an attacker does not get twice the tries, a login may land on either process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.fakes.oauth import FakeOAuth
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOIDC
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import SECRET
from tests.shared.cluster import Node, compat_yaml, eventually, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import RedisServer

pytestmark = pytest.mark.subprocess

PASSWORD = "correct horse battery staple"


async def call(node: Node, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, node.url + path, json=body, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


async def add_user(node: Node, email: str) -> None:
    """The same user on `node` (each test node has its own accounts file)."""
    body = {"email": email, "role": "user", "password": PASSWORD}
    status, data = await call(node, "POST", "/v0/management/users", body, Authorization=f"Bearer {SECRET}")
    assert status == 201, data


async def test_failed_sign_ins_split_over_two_processes_lock_the_account_at_five(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        for node in nodes:
            await add_user(node, "eve@example.com")
        for attempt in range(5):  # 3 on one process, 2 on the other: 5 for the account in all
            status, data = await call(
                nodes[attempt % 2], "POST", "/v0/account/login", {"email": "eve@example.com", "password": "wrong 1"}
            )
            assert status == 401, data
        for node in nodes:  # locked on both: even the right password waits
            status, data = await call(
                node, "POST", "/v0/account/login", {"email": "eve@example.com", "password": PASSWORD}
            )
            assert status == 429, data
    finally:
        stop_nodes(nodes)


async def test_a_management_ban_earned_on_one_process_holds_on_the_other(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        for attempt in range(5):  # wrong keys alternating over both processes
            status, _ = await call(nodes[attempt % 2], "GET", "/v0/management/config", Authorization="Bearer wrong-key")
            assert status == 401
        for node in nodes:  # banned on both, even with the right key
            status, data = await call(node, "GET", "/v0/management/config", Authorization=f"Bearer {SECRET}")
            assert status == 403 and "IP banned" in data["error"], data
    finally:
        stop_nodes(nodes)


async def test_with_redis_down_sign_ins_are_still_limited_and_logins_refused_clearly(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    """Never unlimited: without Redis each process counts alone, so 5 failures on one lock it there;
    a sign-in that would keep its state in Redis is refused with a 503 that says why."""
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url, on_down="fail-open")
    try:
        await add_user(nodes[0], "eve@example.com")
        redis_server.stop()
        for _ in range(5):
            status, _ = await call(
                nodes[0], "POST", "/v0/account/login", {"email": "eve@example.com", "password": "no"}
            )
            assert status == 401
        status, _ = await call(
            nodes[0], "POST", "/v0/account/login", {"email": "eve@example.com", "password": PASSWORD}
        )
        assert status == 429
        # A sign-in in progress needs Redis (another process may take its next step): a clear refusal.
        status, data = await call(nodes[1], "POST", "/v0/account/cli/device")
        assert status == 503 and data["error"].startswith("shared state unavailable"), data
    finally:
        stop_nodes(nodes)


@pytest.fixture
async def oidc(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeOIDC:
    fake = FakeOIDC()
    server = await aiohttp_server(fake.app())
    fake.base_url = f"http://{server.host}:{server.port}"
    return fake


def on_node(url: str, node: Node) -> str:
    """`url` sent to `node` instead (as a load balancer may do with the provider's callback)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{node.port}"))


async def test_a_single_sign_on_started_on_one_process_finishes_on_the_other(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str], oidc: FakeOIDC
) -> None:
    _, base = upstream
    sso = (
        f"sso:\n  issuer: {oidc.base_url}\n  client-id: {CLIENT_ID}\n  client-secret: {CLIENT_SECRET}\n"
        "  allowed-domains: [example.com]\n  default-role: user\n"
    )
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base) + sso, redis_server.url)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(nodes[0].url + "/v0/account/sso/start", allow_redirects=False) as r:
                assert r.status == 302, await r.text()
                authorize = r.headers["Location"]
            async with browser.get(authorize, allow_redirects=False) as r:
                assert r.status == 302
                callback = r.headers["Location"]
            assert callback.startswith(nodes[0].url + "/v0/account/sso/callback?")
            async with browser.get(on_node(callback, nodes[1]), allow_redirects=False) as r:
                assert r.status == 302
                assert "error" not in r.headers["Location"], r.headers["Location"]
            async with browser.get(nodes[1].url + "/v0/account/me") as r:
                assert r.status == 200
                assert (await r.json())["user"]["email"] == "sso.user@example.com"
        assert oidc.token_requests == 1
    finally:
        stop_nodes(nodes)


async def test_a_cli_device_login_started_on_one_process_is_approved_and_polled_on_the_other(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        for node in nodes:
            await add_user(node, "ivy@example.com")
        status, device = await call(nodes[0], "POST", "/v0/account/cli/device")
        assert status == 200, device
        poll = {"grant_type": "device_code", "device_code": device["device_code"]}
        status, data = await call(nodes[1], "POST", "/v0/account/cli/token", poll)
        assert status == 400 and data["error"] == "authorization_pending", data
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            login = {"email": "ivy@example.com", "password": PASSWORD}
            async with browser.post(nodes[1].url + "/v0/account/login", json=login) as r:
                assert r.status == 200, await r.text()
                csrf = (await r.json())["csrf"]
            approve = {"user_code": device["user_code"].lower()}
            async with browser.post(
                nodes[1].url + "/v0/account/cli/device/approve", json=approve, headers={"X-CSRF-Token": csrf}
            ) as r:
                assert r.status == 200, await r.text()
        status, data = await call(nodes[0], "POST", "/v0/account/cli/token", poll)
        assert status == 200 and data["user"] == "ivy@example.com", data
        status, again = await call(nodes[1], "POST", "/v0/account/cli/token", poll)
        assert status == 400 and again["error"].startswith("expired_token"), again  # issued once
        status, _ = await call(nodes[0], "GET", "/v1/models", Authorization=f"Bearer {data['token']}")
        assert status == 200
    finally:
        stop_nodes(nodes)


async def test_a_management_device_login_is_read_and_cancelled_through_the_other_process(
    tmp_path: Path,
    redis_server: RedisServer,
    upstream: tuple[FakeUpstream, str],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """The login's task runs where it started; any process answers the panel's poll and cancel."""
    _, base = upstream
    oauth = FakeOAuth()
    server = await aiohttp_server(oauth.app())
    oauth.base_url = str(server.make_url("")).rstrip("/")
    oauth.device_pending_polls = 10**9  # the user does not approve (yet)
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url, env=oauth.env())
    admin = {"Authorization": f"Bearer {SECRET}"}
    try:
        status, started = await call(nodes[0], "POST", "/v0/management/device-login/codex", **admin)
        assert status == 200, started
        poll = f"/v0/management/get-auth-status?state={started['state']}"

        async def waiting_on_the_other() -> bool:
            return (await call(nodes[1], "GET", poll, **admin))[1].get("status") == "wait"

        await eventually(waiting_on_the_other)
        status, _ = await call(nodes[1], "DELETE", f"/v0/management/oauth-session?state={started['state']}", **admin)
        assert status == 200

        async def cancelled_everywhere() -> bool:
            answers = [(await call(node, "GET", poll, **admin))[1] for node in nodes]
            return all(a == {"status": "error", "error": "oauth flow was cancelled"} for a in answers)

        await eventually(cancelled_everywhere)
        await asyncio.sleep(1.0)  # the owner's task looks at its session every half second
        polls = oauth.device_polls["dev-1"]
        await asyncio.sleep(0.5)
        assert oauth.device_polls["dev-1"] == polls  # and then stopped polling

        oauth.device_pending_polls = 0  # approved at the first poll
        status, started = await call(nodes[0], "POST", "/v0/management/device-login/codex", **admin)
        assert status == 200, started
        poll = f"/v0/management/get-auth-status?state={started['state']}"

        async def saved() -> bool:
            return (await call(nodes[1], "GET", poll, **admin))[1].get("status") == "ok"

        await eventually(saved)
        status, done = await call(nodes[1], "GET", poll, **admin)
        assert (tmp_path / "auths" / done["file"]).is_file()
        status, unknown = await call(nodes[1], "GET", "/v0/management/get-auth-status?state=no-such-state", **admin)
        assert status == 404, unknown
    finally:
        stop_nodes(nodes)
