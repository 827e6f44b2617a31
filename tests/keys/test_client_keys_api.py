"""The key management endpoints over HTTP: create (key shown once, stored hashed), list (redacted,
with usage), disable/enable, PATCH, rotate and delete, each live on return."""

from __future__ import annotations

from typing import Any

import aiohttp
import bcrypt
from aiohttp.test_utils import TestServer

from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory

ADMIN = "admin-secret-value"
VIEWER = "viewer-secret-value"
CONFIG = f"""
host: 127.0.0.1
api-keys:
  - sk-plain-existing-0001  # a plain key stays untouched
remote-management:
  secret-key: "{bcrypt.hashpw(ADMIN.encode(), bcrypt.gensalt(rounds=4)).decode()}"
  viewer-keys: ["{bcrypt.hashpw(VIEWER.encode(), bcrypt.gensalt(rounds=4)).decode()}"]
"""


async def mgmt(server: TestServer, method: str, path: str, body: Any = None, key: str = ADMIN) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            server.make_url("/v0/management" + path),
            headers={"Authorization": f"Bearer {key}"},
            json=body,
        ) as r,
    ):
        return r.status, await r.json()


async def whoami(server: TestServer, key: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/v1/cliproxy/whoami"), headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        return r.status, await r.json()


async def test_key_lifecycle(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    assert server.app is not None
    config_path = server.app[SERVICES].holder.current.config_path

    status, created = await mgmt(
        server,
        "POST",
        "/client-keys",
        {"name": "team-a", "models": ["claude-*"], "max-requests-per-minute": 30, "max-budget-usd": 5},
    )
    assert status == 201, created
    key = created["key"]
    assert key.startswith("sk-cp-")
    text = config_path.read_text()
    assert key not in text and created["key-sha256"] in text
    assert "# a plain key stays untouched" in text

    status, me = await whoami(server, key)
    assert status == 200
    assert me["name"] == "team-a" and me["models"] == ["claude-*"]
    assert me["limits"]["max-requests-per-minute"] == 30

    status, listed = await mgmt(server, "GET", "/client-keys")
    assert status == 200
    (item,) = listed["client-keys"]
    assert item["name"] == "team-a" and key not in str(listed)
    assert item["key"].startswith("sha256:")
    assert item["usage"]["tokens_today"] == 0

    assert (await mgmt(server, "POST", "/client-keys", {"name": "team-a"}))[0] == 409

    assert (await mgmt(server, "POST", "/client-keys/team-a/disable"))[0] == 200
    status, err = await whoami(server, key)
    assert status == 401 and err["error"]["message"] == "API key disabled"
    assert (await mgmt(server, "POST", "/client-keys/team-a/enable"))[0] == 200
    assert (await whoami(server, key))[0] == 200

    status, patched = await mgmt(server, "PATCH", "/client-keys/team-a", {"max-concurrent": 2, "max-budget-usd": None})
    assert status == 200, patched
    me = (await whoami(server, key))[1]
    assert me["limits"]["max-concurrent"] == 2 and me["limits"]["max-budget-usd"] is None

    status, rotated = await mgmt(server, "POST", "/client-keys/team-a/rotate")
    assert status == 200
    assert (await whoami(server, key))[0] == 401
    status, me = await whoami(server, rotated["key"])
    assert status == 200 and me["name"] == "team-a" and me["limits"]["max-concurrent"] == 2

    assert (await mgmt(server, "DELETE", "/client-keys/team-a"))[0] == 200
    assert (await whoami(server, rotated["key"]))[0] == 401
    assert (await mgmt(server, "DELETE", "/client-keys/team-a"))[0] == 404
    assert "sk-plain-existing-0001" in config_path.read_text()


async def test_bad_fields_are_400_and_leave_the_file(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    assert server.app is not None
    before = server.app[SERVICES].holder.current.config_path.read_bytes()
    for body in (
        {"models": ["x"]},
        {"name": "a", "max-requests-per-minute": 0},
        {"name": "a", "expires": "someday"},
        {"name": "a", "key": "sk-chosen-by-client"},
        {"name": "a", "budget-period": "year"},
    ):
        status, err = await mgmt(server, "POST", "/client-keys", body)
        assert status == 400, (body, err)
        assert err["error"] == "invalid client key"
    assert server.app[SERVICES].holder.current.config_path.read_bytes() == before


async def test_viewer_lists_but_cannot_create(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, created = await mgmt(server, "POST", "/client-keys", {"name": "x"})
    assert status == 201
    status, listed = await mgmt(server, "GET", "/client-keys", key=VIEWER)
    assert status == 200 and listed["client-keys"][0]["name"] == "x"
    assert created["key"] not in str(listed) and created["key-sha256"] not in str(listed)
    assert (await mgmt(server, "POST", "/client-keys", {"name": "y"}, key=VIEWER))[0] == 403
    assert (await mgmt(server, "POST", "/client-keys/x/rotate", key=VIEWER))[0] == 403
