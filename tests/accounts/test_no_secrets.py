"""No password, password hash, key, token, invitation link or session id in any log line or in any
answer of a management GET (nor of an account GET), after a whole life cycle of a user."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from cliproxy.server.services import SERVICES
from tests.accounts.helpers import ADMIN, PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream


def get_paths(app: object) -> list[str]:
    """Every GET route of the management and account sub-apps (a placeholder in path parameters)."""
    paths = []
    for sub in app._subapps:  # type: ignore[attr-defined]
        for route in sub.router.routes():
            if route.method == "GET" and route.resource is not None:
                info = route.resource.get_info()
                path = info.get("path") or info.get("formatter", "")
                paths.append(path.replace("{email}", "hana@example.com").replace("{", "").replace("}", ""))
    return paths


async def test_no_secret_in_logs_or_management_gets(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.team("eng", {"all": ["gpt-*"]}, **{"access-groups": ["all"], "budget-usd": 10})
    invitation = await admin.invite("hana@example.com", "user", "eng")
    hana = Browser(proxy)
    await hana.accept(invitation)
    session = hana.cookie()
    await hana.sign_in("hana@example.com")
    await hana.call("POST", "/login", {"email": "hana@example.com", "password": "a wrong password"})
    _, made = await hana.call("POST", "/keys", {"name": "laptop"}, expect=201)
    key = made["key"]
    _, device = await hana.call("POST", "/cli/device", {}, expect=200)
    await hana.call("POST", "/cli/device/approve", {"user_code": device["user_code"]}, expect=200)
    grant = {"grant_type": "device_code", "device_code": device["device_code"]}
    _, issued = await hana.call("POST", "/cli/token", grant)
    token = issued["token"]
    async with aiohttp.ClientSession() as http:
        for secret in (key, token):
            async with http.post(
                proxy.url + "/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {secret}"},
            ) as r:
                assert r.status == 200
    accounts = proxy.server.app[SERVICES].accounts
    password_hash = accounts.users["hana@example.com"].password_hash
    secrets = {
        "password": PASSWORD,
        "password hash": password_hash,
        "hash body": password_hash[7:],
        "key": key,
        "cli token": token,
        "invitation": invitation,
        "session id": session.split(".")[0],
        "device code": device["device_code"],
        "management secret": ADMIN,
    }

    answers: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for path in get_paths(proxy.server.app):
            headers = {"Authorization": f"Bearer {ADMIN if path.startswith('/v0/management') else token}"}
            async with http.get(proxy.url + path, headers=headers) as r:
                answers[path] = await r.text()
    assert "/v0/management/users" in answers and "/v0/account/keys" in answers
    assert "hana@example.com" in answers["/v0/management/users"]
    for path, text in answers.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} in GET {path}"
    lines = [record.getMessage() for record in caplog.records]
    assert any("hana@example.com" in line for line in lines)  # the log does say what happened
    for line in lines:
        for what, secret in secrets.items():
            assert secret not in line, f"{what} in log line {line!r}"
    await hana.close()
