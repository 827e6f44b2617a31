"""Roles and ownership through the running proxy: a `user-viewer` cannot create keys or use models,
a user can neither see nor revoke another's key, `admin-viewer` users read the management API and
change nothing, `admin` users manage users; updates and deletes take effect at once; everything
survives a restart; users close a proxy that had no config keys."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from cliproxy.server.services import SERVICES
from tests.accounts.helpers import PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


async def member(proxy: Proxy, admin: Admin, email: str, role: str = "user", team: str = "") -> Browser:
    await admin.call("POST", "/users", {"email": email, "role": role, "team": team, "password": PASSWORD}, expect=201)
    browser = Browser(proxy)
    await browser.sign_in(email)
    return browser


async def chat(proxy: Proxy, key: str, model: str = "gpt-4o") -> str:
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    answer = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return answer.choices[0].message.content or ""


async def test_user_viewer_cannot_create_keys_or_use_models(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    viewer = await member(proxy, admin, "vic@example.com", "user-viewer")
    _, me = await viewer.call("GET", "/me", expect=200)
    assert me["may_create_keys"] is False
    status, data = await viewer.call("POST", "/keys", {"name": "nope"})
    assert status == 403 and "user-viewer role cannot create keys" in data["error"]
    status, data = await viewer.call("DELETE", "/keys/any-key")
    assert status == 403 and "user-viewer role cannot revoke keys" in data["error"]
    status, _ = await viewer.call("GET", "/keys")
    assert status == 200
    # Their CLI token lets them look (whoami, models), not use models.
    _, device = await viewer.call("POST", "/cli/device", {}, expect=200)
    await viewer.call("POST", "/cli/device/approve", {"user_code": device["user_code"]}, expect=200)
    grant = {"grant_type": "device_code", "device_code": device["device_code"]}
    _, issued = await viewer.call("POST", "/cli/token", grant, expect=200)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await chat(proxy, issued["token"])
    assert "viewer role" in info.value.message
    async with (
        aiohttp.ClientSession() as http,
        http.get(proxy.url + "/v1/cliproxy/whoami", headers={"Authorization": f"Bearer {issued['token']}"}) as r,
    ):
        assert r.status == 200 and (await r.json())["account"]["role"] == "user-viewer"
    await viewer.close()


async def test_a_user_cannot_see_or_revoke_anothers_key(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    alice = await member(proxy, admin, "alice@example.com")
    bob = await member(proxy, admin, "bob@example.com")
    _, made = await bob.call("POST", "/keys", {"name": "bobs"}, expect=201)
    _, listed = await alice.call("GET", "/keys", expect=200)
    assert listed["keys"] == []
    _, usage = await alice.call("GET", "/usage", expect=200)
    assert usage["keys"] == []
    for ref in (made["id"], "bobs"):
        status, data = await alice.call("DELETE", f"/keys/{ref}")
        assert status == 404 and data["error"] == "no such key"
    assert await chat(proxy, made["key"]) == "Hello from fake"  # untouched
    # Same names are fine across users; one's own names are unique among live keys.
    await alice.call("POST", "/keys", {"name": "bobs"}, expect=201)
    status, _ = await alice.call("POST", "/keys", {"name": "bobs"})
    assert status == 409
    await alice.close()
    await bob.close()


async def test_admin_users_manage_and_admin_viewers_read(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.team("eng")
    boss = await member(proxy, admin, "boss@example.com", "admin")
    auditor = await member(proxy, admin, "audit@example.com", "admin-viewer")
    worker = await member(proxy, admin, "worker@example.com", "user", "eng")
    _, made = await worker.call("POST", "/keys", {"name": "w"}, expect=201)
    assert await chat(proxy, made["key"]) == "Hello from fake"

    status, users = await auditor.call("GET", "/v0/management/users")
    assert status == 200 and len(users["users"]) == 3
    status, data = await auditor.call("PATCH", "/v0/management/users/worker@example.com", {"role": "admin"})
    assert status == 403 and "admin role required" in data["error"]

    _, changed = await boss.call(
        "PATCH", "/v0/management/users/worker@example.com", {"role": "user-viewer"}, expect=200
    )
    assert changed["role"] == "user-viewer"
    with pytest.raises(openai.PermissionDeniedError):  # the role change applies to their keys at once
        await chat(proxy, made["key"])
    await boss.call("PATCH", "/v0/management/users/worker@example.com", {"role": "user", "disabled": True}, expect=200)
    with pytest.raises(openai.AuthenticationError):  # a disabled user's keys are refused
        await chat(proxy, made["key"])
    status, _ = await worker.call("GET", "/me")
    assert status == 401  # and their sessions ended
    status, data = await boss.call("DELETE", "/v0/management/users/boss@example.com")
    assert status == 400 and "your own account" in data["error"]
    await boss.call("DELETE", "/v0/management/users/worker@example.com", expect=200)
    status, data = await boss.call("DELETE", "/v0/management/teams/eng")
    assert status == 200, data  # no members left
    for browser in (boss, auditor, worker):
        await browser.close()


async def test_everything_survives_a_restart(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    text = config(base)
    proxy = await start_proxy(text)
    admin = Admin(proxy)
    await admin.team("eng", **{"budget-usd": 100})
    user = await member(proxy, admin, "rae@example.com", "user", "eng")
    _, made = await user.call("POST", "/keys", {"name": "k"}, expect=201)
    assert await chat(proxy, made["key"]) == "Hello from fake"
    cookie = user.cookie()
    await user.close()
    spent = (await admin.call("GET", "/teams"))["teams"][0]["status"]["spent_usd_this_period"]
    assert spent > 0
    await proxy.server.close()  # stops the services: the usage and accounts files are closed

    again = await start_proxy(text)
    status = (await Admin(again).call("GET", "/teams"))["teams"][0]["status"]
    assert status["requests_this_period"] == 1  # the earlier request, restored from the usage database
    assert status["spent_usd_this_period"] == pytest.approx(spent)
    assert await chat(again, made["key"]) == "Hello from fake"  # the key survived
    browser = Browser(again)
    browser.plant(cookie)
    _, me = await browser.call("GET", "/me", expect=200)  # the session survived too
    assert me["user"]["email"] == "rae@example.com"
    services = again.server.app[SERVICES]
    assert services.accounts.keys  # nothing in the file is in clear
    raw = services.accounts.db.path.read_bytes() if services.accounts.db else b""
    assert made["key"].encode() not in raw and PASSWORD.encode() not in raw
    await browser.close()


async def test_users_close_a_proxy_without_config_keys(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base).replace("api-keys:\n  - sk-plain-config-key-0001\n", "api-keys: []\n"))
    assert await chat(proxy, "anything") == "Hello from fake"  # no keys at all: CLIProxyAPI's open proxy
    admin = Admin(proxy)
    await member(proxy, admin, "sol@example.com")
    with pytest.raises(openai.AuthenticationError):  # once people have accounts, keys are required
        await chat(proxy, "anything")
