"""The management endpoints the web panel added, over HTTP against fake upstreams and a fake OAuth
provider: `whoami`, the credential table's fields, refresh now, test now, device-code logins, and
the YAML editor's structured validation errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.management.oauth import OAUTH_LOGINS
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.fakes.oauth import FakeOAuth
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt

KEY_ON, KEY_OFF = "sk-ant-panel-on-1111", "sk-ant-panel-off-2222"


@pytest.fixture
async def fakes(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeUpstream, str, FakeOAuth]:
    """A fake upstream and a fake OAuth provider; the proxy's OAuth flows point at the latter."""
    upstream = FakeUpstream()
    up = await aiohttp_server(upstream.app())
    oauth = FakeOAuth()
    server = await aiohttp_server(oauth.app())
    oauth.base_url = str(server.make_url("")).rstrip("/")
    for name, value in oauth.env().items():
        monkeypatch.setenv(name, value)
    return upstream, str(up.make_url("")).rstrip("/"), oauth


def config(base: str, auth_dir: Path) -> str:
    return f"""
host: 127.0.0.1
auth-dir: {auth_dir}
api-keys: [sk-client-panel-0001]
claude-api-key:
  - api-key: {KEY_ON}
    base-url: {base}
    models: [{{name: claude-fake-1}}]
  - api-key: {KEY_OFF}
    base-url: {base}
    excluded-models: ["*"]
{MANAGEMENT_BLOCK}"""


def claude_file(auth_dir: Path, oauth: FakeOAuth) -> Path:
    auth_dir.mkdir(exist_ok=True)
    path = auth_dir / "claude-panel.json"
    path.write_text(
        json.dumps(
            {
                "type": "claude",
                "email": "panel@example.com",
                "access_token": "at-panel-0",
                "refresh_token": oauth.issue_refresh_token("claude"),
                "expired": "2099-01-01T00:00:00Z",
                "last_refresh": "2026-01-01T00:00:00Z",
            }
        )
    )
    path.chmod(0o600)
    return path


def by_name(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in listing["credentials"]}


async def test_whoami_names_the_role_and_what_the_panel_may_offer(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-client-1]\n" + MANAGEMENT_BLOCK)
    admin = (await Mgmt(server).get("/whoami")).json()
    assert admin["role"] == "admin"
    assert {b["type"]: b["path"] for b in admin["logins"]["browser"]} == {
        "claude": "anthropic-auth-url",
        "codex": "codex-auth-url",
        "antigravity": "antigravity-auth-url",
    }
    assert sorted(admin["logins"]["device"]) == ["codex", "kimi", "xai"] and admin["logins"]["import"] == ["vertex"]
    assert {"claude-api-key", "openai-compatibility"} <= set(admin["providers"])
    assert admin["usage_history"] is True and admin["logging_to_file"] is False
    assert (await Mgmt(server, VIEWER).get("/whoami")).json()["role"] == "viewer"
    assert (await Mgmt(server, "not-the-key").get("/whoami")).status == 401


async def test_credential_status_has_what_the_credentials_page_shows(
    proxy: ProxyFactory, fakes: tuple[FakeUpstream, str, FakeOAuth], tmp_path: Path
) -> None:
    _, base, oauth = fakes
    claude_file(tmp_path / "auths", oauth)
    mgmt = Mgmt(await proxy(config(base, tmp_path / "auths")))
    reply = await mgmt.get("/credential-status")
    creds = by_name(reply.json())
    on, off, file = creds["claude-api-key[0]"], creds["claude-api-key[1]"], creds["claude-panel.json"]
    assert (on["kind"], on["key_hint"], on["disabled"], on["models"]) == ("api-key", "sk-…1111", False, 1)
    assert (off["disabled"], off["models"]) == (True, 0)  # switched off by excluding every model
    assert file["kind"] == "auth-file" and file["type"] == "claude" and file["email"] == "panel@example.com"
    assert file["expires"] == "2099-01-01T00:00:00Z" and file["last_refresh"] == "2026-01-01T00:00:00Z"
    assert file["refreshable"] is True and file["refresh_error"] is None
    for secret in (KEY_ON, KEY_OFF, "at-panel-0"):
        assert secret not in reply.body.decode()

    switched = await mgmt.patch("/auth-files/status", json={"auth_index": on["auth_index"], "disabled": True})
    assert switched.status == 200
    assert by_name((await mgmt.get("/credential-status")).json())["claude-api-key[0]"]["disabled"] is True


async def test_refresh_now_spends_the_refresh_token_once_per_press(
    proxy: ProxyFactory, fakes: tuple[FakeUpstream, str, FakeOAuth], tmp_path: Path
) -> None:
    _, base, oauth = fakes
    path = claude_file(tmp_path / "auths", oauth)
    server = await proxy(config(base, tmp_path / "auths"))
    mgmt = Mgmt(server)
    creds = by_name((await mgmt.get("/credential-status")).json())
    index = creds["claude-panel.json"]["auth_index"]

    reply = await mgmt.post(f"/credentials/{index}/refresh")
    assert reply.status == 200, reply
    assert oauth.requests["claude:refresh"] == 1
    assert json.loads(path.read_text())["access_token"] != "at-panel-0"
    assert reply.json()["last_refresh"] is not None
    assert (await mgmt.post(f"/credentials/{index}/refresh")).status == 200  # the new refresh token works too
    assert oauth.requests["claude:refresh"] == 2

    api_key = creds["claude-api-key[0]"]["auth_index"]
    assert (await mgmt.post(f"/credentials/{api_key}/refresh")).json()["error"] == "API keys have no token to refresh"
    assert (await mgmt.post("/credentials/nope/refresh")).status == 404
    assert (await Mgmt(server, VIEWER).post(f"/credentials/{index}/refresh")).status == 403
    assert oauth.requests["claude:refresh"] == 2


async def test_test_now_sends_one_request_and_changes_nothing(
    proxy: ProxyFactory, fakes: tuple[FakeUpstream, str, FakeOAuth], tmp_path: Path
) -> None:
    upstream, base, _ = fakes
    server = await proxy(config(base, tmp_path / "auths"))
    services = server.app[SERVICES]
    mgmt = Mgmt(server)
    index = by_name((await mgmt.get("/credential-status")).json())["claude-api-key[0]"]["auth_index"]

    ok = (await mgmt.post(f"/credentials/{index}/test")).json()
    assert (ok["result"], ok["model"], ok["name"]) == ("ok", "claude-fake-1", "claude-api-key[0]")
    assert ok["detail"].startswith("HTTP 200 in ")
    assert len(upstream.calls(KEY_ON)) == 1 and upstream.calls(KEY_ON)[0].json["max_tokens"] == 8

    upstream.fail(401, key=KEY_ON, dialect="claude")
    failed = (await mgmt.post(f"/credentials/{index}/test")).json()
    assert failed["result"] == "failed" and failed["detail"].startswith("HTTP 401: fake upstream error 401")
    assert services.health.snapshot() == [] and len(services.usage) == 0  # no cooldown, no usage record
    assert (await Mgmt(server, VIEWER).post(f"/credentials/{index}/test")).status == 403
    assert len(upstream.calls(KEY_ON)) == 2


async def wait_login(mgmt: Mgmt, state: str) -> dict[str, Any]:
    for _ in range(500):
        body: dict[str, Any] = (await mgmt.get(f"/get-auth-status?state={state}")).json()
        if body["status"] != "wait":
            return body
        await asyncio.sleep(0.01)
    raise AssertionError("the login never finished")


async def test_device_login_shows_the_code_and_saves_the_credential(
    proxy: ProxyFactory, fakes: tuple[FakeUpstream, str, FakeOAuth], tmp_path: Path
) -> None:
    _, base, oauth = fakes
    server = await proxy(config(base, tmp_path / "auths"))
    mgmt = Mgmt(server)
    started = await mgmt.post("/device-login/codex")
    assert started.status == 200, started
    body = started.json()
    assert (body["user_code"], body["verification_url"]) == ("ABCD-1234", f"{oauth.base_url}/codex/device")
    assert body["expires_in"] == 15 * 60
    done = await wait_login(mgmt, body["state"])
    assert done["status"] == "ok"
    saved = tmp_path / "auths" / done["file"]
    assert saved.is_file() and saved.stat().st_mode & 0o077 == 0
    providers = {c["name"]: c["provider"] for c in (await mgmt.get("/credential-status")).json()["credentials"]}
    assert providers[done["file"]] == "codex"  # live at once

    assert (await mgmt.post("/device-login/claude")).status == 404  # no device flow for Claude
    assert (await Mgmt(server, VIEWER).post("/device-login/codex")).status == 403


async def test_a_cancelled_device_login_stops_polling_and_saves_nothing(
    proxy: ProxyFactory, fakes: tuple[FakeUpstream, str, FakeOAuth], tmp_path: Path
) -> None:
    _, base, oauth = fakes
    oauth.device_pending_polls = 10**9  # the user never approves
    server = await proxy(config(base, tmp_path / "auths"))
    mgmt = Mgmt(server)
    state = (await mgmt.post("/device-login/codex")).json()["state"]
    assert (await mgmt.delete(f"/oauth-session?state={state}")).status == 200
    assert (await wait_login(mgmt, state))["status"] == "error"
    logins = server.app[OAUTH_LOGINS]
    for _ in range(300):  # the login's task notices within a poll step and ends
        if not logins.tasks:
            break
        await asyncio.sleep(0.01)
    assert not logins.tasks
    await asyncio.sleep(0.05)  # a poll already on the wire when the task ended may still land
    polls = oauth.device_polls["dev-1"]
    await asyncio.sleep(0.2)
    assert oauth.device_polls["dev-1"] == polls  # nothing polls any more
    assert not list((tmp_path / "auths").glob("codex-*.json"))


async def test_an_invalid_config_lists_each_error_with_its_path(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy("host: 127.0.0.1\napi-keys: [sk-client-1]\n" + MANAGEMENT_BLOCK))
    before = (tmp_path / "config.yaml").read_text()
    bad = before + "claude-api-key:\n  - api-key: sk-x\n    base-url: not-a-url\nrequest-retry: lots\n"
    reply = await mgmt.put("/config.yaml", data=bad.encode())
    assert reply.status == 422
    errors = {e["path"]: e["message"] for e in reply.json()["errors"]}
    assert errors["claude-api-key[0].base-url"].startswith("not a URL")
    assert "request-retry" in errors
    assert (tmp_path / "config.yaml").read_text() == before
