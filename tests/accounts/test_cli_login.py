"""`cliproxy login --proxy URL` as a user runs it (a real subprocess), through the loopback callback
and through the device code; then `whoami`, `models` and `keys` with the stored token, and an
expired token refused with a message that says to sign in again."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.cli import main
from tests.accounts.helpers import PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


async def start_cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cliproxy", *args,
        env={**os.environ}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def read_until(proc: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "the CLI exited early: " + (await proc.stderr.read()).decode()  # type: ignore[union-attr]
        match = re.search(pattern, line)
        if match:
            return match


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def team_member(start_proxy: Starter, base: str, extra: str = "") -> tuple[Proxy, Browser]:
    proxy = await start_proxy(config(base, extra))
    admin = Admin(proxy)
    await admin.team("eng", {"mini": ["gpt-4o-mini"]}, **{"access-groups": ["mini"], "budget-credits": 500})
    user = {"email": "ivy@example.com", "role": "user", "team": "eng", "password": PASSWORD}
    await admin.call("POST", "/users", user, expect=201)
    browser = Browser(proxy)
    await browser.sign_in("ivy@example.com")
    return proxy, browser


def token_file(home: Path) -> Path:
    return home / ".config" / "cliproxy" / "login.json"


async def test_cli_login_through_the_loopback_callback(
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    _, base = upstream
    proxy, browser = await team_member(start_proxy, base)
    proc = await start_cli("login", "--proxy", proxy.url, "--no-browser")
    url = (await read_until(proc, r"http://\S+/management\.html#/cli-login\?\S+")).group(0)
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).fragment.split("?", 1)[1]).items()}
    assert params["redirect_uri"].startswith("http://127.0.0.1:")
    # What the panel's CLI sign-in page does once the user approves:
    _, approved = await browser.call("POST", "/cli/authorize", params, expect=200)
    async with aiohttp.ClientSession() as http, http.get(approved["redirect"]) as landing:
        assert landing.status == 200
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "Signed in to" in out.decode() and "ivy@example.com" in out.decode()

    saved = token_file(isolated_home)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    token = json.loads(saved.read_text())["proxies"][proxy.url]["token"]
    assert token.startswith("sk-cli-")

    monkeypatch.delenv("CLIPROXY_URL", raising=False)
    monkeypatch.delenv("CLIPROXY_API_KEY", raising=False)
    monkeypatch.delenv("CLIPROXY_MANAGEMENT_KEY", raising=False)
    code, out, err = await run(capsys, "whoami")  # the proxy and the token come from the login
    assert code == 0, err
    assert "ivy@example.com" in out and "eng" in out and "token expires" in out, out
    assert re.search(r"token expires .*\(in 2[34]h", out), out
    assert "team credits left" in out

    for argv in (("models",), ("models", "list")):
        code, out, _ = await run(capsys, *argv)
        assert code == 0 and "gpt-4o-mini" in out and "gpt-4o " not in out + " "

    code, out, err = await run(capsys, "keys", "create", "laptop", "--models", "gpt-4o-mini", "--budget", "1")
    assert code == 0, err
    key = re.search(r"sk-cp-\S+", out)
    assert key is not None
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key.group(0), max_retries=0)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    code, out, _ = await run(capsys, "keys", "list")
    assert code == 0 and "laptop" in out and "active" in out
    code, out, _ = await run(capsys, "keys", "revoke", "laptop")
    assert code == 0 and "revoked" in out
    code, out, _ = await run(capsys, "keys", "list", "--json")
    assert [k["status"] for k in json.loads(out) if k["name"] == "laptop"] == ["revoked"]

    # The token itself works as a client key.
    as_token = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=token, max_retries=0)
    answer = await as_token.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    await browser.close()


async def test_cli_login_with_a_device_code(
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    _, base = upstream
    proxy, browser = await team_member(start_proxy, base)
    monkeypatch.setenv("CLIPROXY_URL", proxy.url)  # the URL from the environment instead of --proxy
    proc = await start_cli("login", "--device")
    code = (await read_until(proc, r"\b[B-Z]{4}-[B-Z]{4}\b")).group(0)
    await browser.call("POST", "/cli/device/approve", {"user_code": code.lower()}, expect=200)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "ivy@example.com" in out.decode()
    code_, out, err = await run(capsys, "whoami", "--json")
    assert code_ == 0, err
    account = json.loads(out)["account"]
    assert account["user"] == "ivy@example.com" and account["key"]["kind"] == "cli"
    assert 23 * 3600 < account["key"]["expires_in_seconds"] <= 24 * 3600
    await browser.close()


async def test_expired_login_token_is_refused(
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    _, base = upstream
    proxy, browser = await team_member(start_proxy, base, "cli-token-expiration-hours: 0.0004")  # 1.44 s
    _, device = await browser.call("POST", "/cli/device", {}, expect=200)
    assert device["verification_uri"] == proxy.url + "/management.html#/device"
    await browser.call("POST", "/cli/device/approve", {"user_code": device["user_code"]}, expect=200)
    grant = {"grant_type": "device_code", "device_code": device["device_code"]}
    _, issued = await browser.call("POST", "/cli/token", grant, expect=200)
    token = issued["token"]
    from cliproxy.login_token import StoredLogin, save_login

    save_login(StoredLogin(proxy.url, token, issued["expires"], issued["created"], "ivy@example.com"))
    await asyncio.sleep(2.0)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == 401
        assert "run `cliproxy login` again" in (await r.json())["error"]["message"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(proxy.url + "/v0/account/keys", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 401 and "run `cliproxy login` again" in (await r.json())["error"]  # the portal too
    code, _, err = await run(capsys, "whoami", "--url", proxy.url)
    assert code == 1 and "expired" in err and "cliproxy login" in err
    # The server says so too when the CLI cannot tell (another machine's clock, a copied token).
    code, _, err = await run(capsys, "whoami", "--url", proxy.url, "--key", token)
    assert code == 1 and "401" in err and "run `cliproxy login` again" in err
    await browser.close()


async def test_login_without_a_proxy_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPROXY_URL", raising=False)
    proc = await start_cli("login")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"--proxy URL" in err and b"cliproxy login claude" in err


async def start_device(http: aiohttp.ClientSession, proxy: Proxy, address: str) -> int:
    async with http.post(proxy.url + "/v0/account/cli/device", json={}, headers={"X-Forwarded-For": address}) as r:
        return r.status


async def test_anonymous_device_codes_never_block_signed_in_users(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """`/cli/device` needs no sign-in: one address is held to a few device codes a minute, and
    however many addresses fill the device codes, a signed-in user's loopback sign-in still works
    and so do password sign-ins from the address that was held back."""
    from cliproxy.accounts.cli_login import DEVICE_STARTS_PER_ADDRESS, MAX_PENDING_DEVICES

    _, base = upstream
    proxy, browser = await team_member(start_proxy, base, "trusted-proxies: [127.0.0.1/32]")
    async with aiohttp.ClientSession() as http:
        statuses = [await start_device(http, proxy, "203.0.113.9") for _ in range(DEVICE_STARTS_PER_ADDRESS + 1)]
        assert statuses == [200] * DEVICE_STARTS_PER_ADDRESS + [429]
        for n in range(MAX_PENDING_DEVICES - DEVICE_STARTS_PER_ADDRESS):
            assert await start_device(http, proxy, f"2001:db8::{n:x}") == 200
        assert await start_device(http, proxy, "198.51.100.1") == 429  # the device codes are full
        login = {"email": "ivy@example.com", "password": PASSWORD}
        async with http.post(
            proxy.url + "/v0/account/login", json=login, headers={"X-Forwarded-For": "203.0.113.9"}
        ) as r:
            assert r.status == 200  # the address held back from device codes may still sign in
    params = {"redirect_uri": "http://127.0.0.1:8765/cb", "state": "s", "code_challenge": "c" * 43}
    _, approved = await browser.call("POST", "/cli/authorize", params, expect=200)
    assert approved["redirect"].startswith("http://127.0.0.1:8765/cb?code=")
    await browser.close()


@pytest.mark.parametrize(
    ("device", "issued", "message"),
    [
        ({"device_code": "d", "verification_uri": "http://x/device"}, {}, "no valid 'user_code'"),
        (
            {"device_code": "d", "user_code": "BCDF-GHJK", "verification_uri": "http://x", "interval": "soon"},
            {},
            "invalid 'interval'",
        ),
        (
            {"device_code": "d", "user_code": "BCDF-GHJK", "verification_uri": "http://x", "interval": 1},
            {"token": "sk-cli-x", "created": "yesterday", "expires": None},
            "invalid 'created'",
        ),
    ],
)
async def test_a_malformed_proxy_answer_fails_the_login_with_a_message(
    device: dict[str, object], issued: dict[str, object], message: str, isolated_home: Path
) -> None:
    """Something at the URL answers 200 with a body that is not what a cliproxy sends: the CLI says
    what is wrong instead of printing a traceback."""

    async def answer(body: dict[str, object]) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v0/account/cli/device", lambda _: answer(device))
    app.router.add_post("/v0/account/cli/token", lambda _: answer(issued))
    async with TestServer(app, host="127.0.0.1") as server:
        proc = await start_cli("login", "--proxy", str(server.make_url("")), "--device")
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1, err.decode()
    assert message in err.decode() and "Traceback" not in err.decode(), err.decode()
