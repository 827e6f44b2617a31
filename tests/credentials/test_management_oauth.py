"""Web-UI logins and vertex import through the real server: auth-url → browser → callback → saved file."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cliproxy.management.oauth import OAUTH_LOGINS
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.fakes.oauth import FakeOAuth

SECRET = "mgmt-secret-for-oauth"
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
ADMIN = {"Authorization": f"Bearer {SECRET}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server(
    proxy: ProxyFactory, fake_oauth: FakeOAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> TestServer:
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_CLAUDE_CALLBACK_PORT", str(free_port()))
    monkeypatch.setenv("CLIPROXY_CODEX_CALLBACK_PORT", str(free_port()))
    (tmp_path / "auths").mkdir()
    srv = await proxy(
        f"""
        host: 127.0.0.1
        api-keys: [sk-client-key]
        auth-dir: {tmp_path / "auths"}
        remote-management:
          secret-key: "{SECRET_HASH}"
        """
    )
    srv.app[OAUTH_LOGINS].poll_seconds = 0.01
    return srv


async def call(server: TestServer, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.make_url("/v0/management" + path), **kwargs) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def wait_status(server: TestServer, state: str) -> dict[str, Any]:
    for _ in range(1000):
        _, body = await call(server, "GET", f"/get-auth-status?state={state}", headers=ADMIN)
        if body["status"] != "wait":
            return dict(body)
        await asyncio.sleep(0.01)
    raise AssertionError("login never finished")


async def test_codex_web_login_through_the_callback_forwarder(server: TestServer, tmp_path: Path) -> None:
    status, body = await call(server, "GET", "/codex-auth-url?is_webui=1", headers=ADMIN)
    assert status == 200 and body["status"] == "ok"
    state = body["state"]
    async with aiohttp.ClientSession() as browser:
        async with browser.get(body["url"], allow_redirects=False) as resp:
            location = resp.headers["Location"]  # http://localhost:<codex port>/auth/callback?code=…
        async with browser.get(location) as resp:  # forwarder → /codex/callback on the proxy
            assert resp.status == 200 and "Authentication successful" in await resp.text()
            assert resp.url.path == "/codex/callback"
    result = await wait_status(server, state)
    assert result["status"] == "ok" and result["file"].startswith("codex-")
    assert (tmp_path / "auths" / result["file"]).is_file()


async def test_claude_pasted_redirect_url_and_replays(server: TestServer, tmp_path: Path) -> None:
    _, body = await call(server, "GET", "/anthropic-auth-url", headers=ADMIN)
    state = body["state"]
    async with aiohttp.ClientSession() as browser, browser.get(body["url"], allow_redirects=False) as resp:
        location = resp.headers["Location"]
    assert "%23" in location  # the fake appends #state to Claude's code, as the real one does
    status, reply = await call(
        server, "POST", "/oauth-callback", json={"provider": "anthropic", "redirect_url": location}
    )
    assert (status, reply) == (200, {"status": "ok"})
    result = await wait_status(server, state)
    assert result["status"] == "ok"
    saved = tmp_path / "auths" / "claude-user@example.com.json"
    assert result["file"] == saved.name and stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert not list((tmp_path / "auths").glob(".oauth-*"))  # the hand-off file is consumed
    # Registered with the runtime before the status says ok: the panel may use it at once.
    assert [c.id for c in server.app[SERVICES].holder.current.auth_files] == [saved.name]
    status, reply = await call(server, "POST", "/oauth-callback", json={"provider": "claude", "redirect_url": location})
    assert (status, reply) == (409, {"error": "oauth flow is already completed"})


async def test_provider_error_is_reported_by_get_auth_status(server: TestServer) -> None:
    _, body = await call(server, "GET", "/codex-auth-url", headers=ADMIN)
    url = f"http://localhost:1455/auth/callback?error=access_denied&state={body['state']}"
    status, _ = await call(server, "GET", "/oauth-callback", params={"provider": "codex", "redirect_url": url})
    assert status == 200
    result = await wait_status(server, body["state"])
    assert result["status"] == "error" and "access_denied" in result["error"]


async def test_oauth_callback_errors(server: TestServer) -> None:
    _, body = await call(server, "GET", "/codex-auth-url", headers=ADMIN)
    state = body["state"]
    cases = [
        ({"provider": "codex", "code": "c"}, 400, "state is required"),
        ({"provider": "codex", "code": "c", "state": "a/../b"}, 400, "invalid state"),
        ({"provider": "codex", "state": state}, 400, "code or error is required"),
        ({"provider": "qwen", "code": "c", "state": state}, 400, "unsupported provider"),  # not served by cliproxy
        ({"provider": "claude", "code": "c", "state": state}, 400, "provider does not match state"),
        ({"provider": "codex", "code": "c", "state": "nope"}, 404, "unknown or expired state"),
        ({"provider": "codex", "redirect_url": "http://x/cb?state=s"}, 400, "invalid redirect_url"),
    ]
    for payload, want_status, message in cases:
        status, reply = await call(server, "POST", "/oauth-callback", json=payload)
        assert (status, reply) == (want_status, {"error": message}), payload


async def test_landing_page_ignores_unknown_states(server: TestServer, tmp_path: Path) -> None:
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(server.make_url("/anthropic/callback?code=c&state=unknown-state")) as resp,
    ):
        assert resp.status == 200
    assert list((tmp_path / "auths").iterdir()) == []


async def test_auth_url_needs_the_management_key(server: TestServer) -> None:
    status, _ = await call(server, "GET", "/anthropic-auth-url")
    assert status == 401


async def test_vertex_import_saves_the_service_account(server: TestServer, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sa = {"type": "service_account", "project_id": "proj-9", "private_key": pem, "client_email": "sa@proj-9.iam"}
    form = aiohttp.FormData()
    form.add_field("file", json.dumps(sa), filename="key.json", content_type="application/json")
    form.add_field("location", "europe-west4")
    status, body = await call(server, "POST", "/vertex/import", data=form, headers=ADMIN)
    assert status == 200 and body["auth-file"] == "vertex-proj-9.json" and body["location"] == "europe-west4"
    saved = json.loads((tmp_path / "auths" / "vertex-proj-9.json").read_text())
    assert saved["service_account"] == sa and saved["email"] == "sa@proj-9.iam"
    # Live before the answer: the next request can use it.
    assert [c.id for c in server.app[SERVICES].holder.current.auth_files] == ["vertex-proj-9.json"]
    status, body = await call(server, "POST", "/vertex/import", data=b"{oops", headers=ADMIN)
    assert status == 400
    bad = {**sa, "private_key": "not a key"}
    status, body = await call(server, "POST", "/vertex/import", json=bad, headers=ADMIN)
    assert status == 400 and "private_key" in body["error"]


async def test_server_refreshes_due_credentials_and_shows_failures_in_auth_files(
    proxy: ProxyFactory, fake_oauth: FakeOAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    auths = tmp_path / "auths"
    auths.mkdir()
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    good = {"type": "claude", "email": "a@x.com", "access_token": "at-a", "expired": soon, "prefix": "keep"}
    good["refresh_token"] = fake_oauth.issue_refresh_token("claude")
    dead = {"type": "codex", "email": "b@x.com", "access_token": "at-b", "refresh_token": "rt-revoked", "expired": soon}
    for name, data in (("claude-a.json", good), ("codex-b.json", dead)):
        (auths / name).write_text(json.dumps(data))
        (auths / name).chmod(0o600)
    server = await proxy(
        f"""
        host: 127.0.0.1
        api-keys: [sk-client-key]
        auth-dir: {auths}
        remote-management:
          secret-key: "{SECRET_HASH}"
        """
    )
    entries: dict[str, Any] = {}
    for _ in range(1000):
        _, body = await call(server, "GET", "/auth-files", headers=ADMIN)
        entries = {f["name"]: f for f in body["files"]}
        if entries["codex-b.json"]["status"] == "error" and entries["claude-a.json"].get("refresh", {}).get(
            "refreshes"
        ):
            break
        await asyncio.sleep(0.01)
    failed = entries["codex-b.json"]
    assert failed["status"] == "error" and "invalid_grant" in failed["status_message"]
    assert failed["next_retry_after"] is not None and failed["refresh"]["failures"] == 1
    saved = json.loads((auths / "claude-a.json").read_text())
    assert saved["access_token"] != "at-a" and saved["prefix"] == "keep"
    assert fake_oauth.requests["claude:refresh"] == 1 and fake_oauth.requests["codex:refresh"] == 1
    assert server.app is not None and server.app[SERVICES].credentials.started


async def test_web_relogin_keeps_user_fields_of_the_existing_file(server: TestServer, tmp_path: Path) -> None:
    saved = tmp_path / "auths" / "claude-user@example.com.json"
    saved.write_text(
        json.dumps(
            {
                "type": "claude", "email": "user@example.com", "access_token": "old-at", "refresh_token": "old-rt",
                "prefix": "team", "priority": 9, "proxy_url": "http://proxy.local:3128", "headers": {"X-Team": "a"},
            }
        )
    )  # fmt: skip
    saved.chmod(0o600)
    _, body = await call(server, "GET", "/anthropic-auth-url", headers=ADMIN)
    async with aiohttp.ClientSession() as browser, browser.get(body["url"], allow_redirects=False) as resp:
        location = resp.headers["Location"]
    status, _ = await call(server, "POST", "/oauth-callback", json={"provider": "claude", "redirect_url": location})
    assert status == 200
    assert (await wait_status(server, body["state"]))["status"] == "ok"
    data = json.loads(saved.read_text())
    assert data["prefix"] == "team" and data["priority"] == 9 and data["proxy_url"] == "http://proxy.local:3128"
    assert data["headers"] == {"X-Team": "a"}
    assert data["access_token"] not in ("old-at", "") and data["refresh_token"] != "old-rt"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
