"""The management guard over real HTTP: availability, key sources, roles, remote rules and bans."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp.test_utils import TestServer

from cliproxy import __version__
from cliproxy.config.load import load_config
from cliproxy.management import app as management_app
from cliproxy.management.guard import go_duration
from cliproxy.runtime import build_runtime
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory, write_config

SECRET = "mgmt-secret-value"
VIEWER = "viewer-secret-value"
# Cost 4 keeps the suite fast; the guard accepts any bcrypt cost.
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
VIEWER_HASH = bcrypt.hashpw(VIEWER.encode(), bcrypt.gensalt(rounds=4)).decode()

CONFIG = f"""
host: 127.0.0.1
api-keys: [sk-client-key-aaaa]
claude-api-key:
  - api-key: sk-ant-provider-zzzz
remote-management:
  secret-key: "{SECRET_HASH}"
  viewer-keys: ["{VIEWER_HASH}"]
"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get(
    server: TestServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/v0/management" + path), headers=headers or {}) as r,
    ):
        return r.status, await r.read(), dict(r.headers)


async def test_no_secret_means_404_with_empty_body(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\n")
    for path in ("/config", "/reload-status", "/anything"):
        status, body, _ = await get(server, path, bearer("whatever"))
        assert (status, body) == (404, b"")


async def test_config_view_hides_listener_and_secret(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, body, headers = await get(server, "/config", bearer(SECRET))
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-CPA-VERSION"] == __version__
    assert headers["Access-Control-Allow-Origin"] == "*"
    text = body.decode()
    data = json.loads(text)
    for hidden in ("host", "port", "auth-dir", "remote-management"):
        assert hidden not in data
    assert SECRET_HASH not in text and SECRET not in text and VIEWER_HASH not in text
    assert data["claude-api-key"][0]["api-key"] == "sk-ant-provider-zzzz"
    assert data["ws-auth"] is True
    assert data["api-keys"] == ["sk-client-key-aaaa"]


async def test_every_management_response_has_the_headers(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for path, headers in (("/config", {}), ("/config", bearer("wrong")), ("/nope", bearer(SECRET))):
        status, _, got = await get(server, path, headers)
        assert status in (401, 404)
        assert got["Cache-Control"] == "no-store"
        assert got["X-CPA-VERSION"] == __version__


async def test_key_sources(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for headers in (bearer(SECRET), {"Authorization": SECRET}, {"X-Management-Key": SECRET}):
        status, _, _ = await get(server, "/config", headers)
        assert status == 200, headers
    # The bearer token is not trimmed.
    status, body, _ = await get(server, "/config", {"Authorization": f"Bearer  {SECRET}"})
    assert status == 401 and b"invalid management key" in body


async def test_missing_key_is_401_and_never_counts(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for _ in range(8):
        status, body, _ = await get(server, "/config")
        assert status == 401
        assert body == b'{"error":"missing management key"}'
    status, _, _ = await get(server, "/config", bearer(SECRET))
    assert status == 200


async def test_five_wrong_keys_ban_even_the_right_key(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for _ in range(5):
        status, body, _ = await get(server, "/config", bearer("wrong-key"))
        assert status == 401
        assert body == b'{"error":"invalid management key"}'
    status, body, headers = await get(server, "/config", bearer(SECRET))
    assert status == 403
    assert headers["Cache-Control"] == "no-store"
    message = json.loads(body)["error"]
    assert re.fullmatch(r"IP banned due to too many failed attempts\. Try again in (29m\d{1,2}s|30m0s)", message)


async def test_success_resets_the_failure_count(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    for _ in range(2):
        for _ in range(4):
            assert (await get(server, "/config", bearer("wrong-key")))[0] == 401
        assert (await get(server, "/config", bearer(SECRET)))[0] == 200


async def test_viewer_key_reads_but_cannot_write(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.management import admin_probe

    monkeypatch.setattr(management_app, "RESOURCES", (*management_app.RESOURCES, admin_probe))
    from tests.conftest import app_from_config

    server: TestServer = await aiohttp_server(app_from_config(write_config(tmp_path, CONFIG)))
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/v0/management/probe"), headers=bearer(VIEWER)) as r:
            assert r.status == 200
            assert (await r.json())["role"] == "viewer"
        async with session.post(server.make_url("/v0/management/probe"), headers=bearer(VIEWER)) as r:
            assert r.status == 403
            assert r.headers["Cache-Control"] == "no-store"
        async with session.post(server.make_url("/v0/management/probe"), headers=bearer(SECRET)) as r:
            assert r.status == 200
            assert (await r.json())["role"] == "admin"


def test_plaintext_viewer_keys_are_hashed_at_load(tmp_path: Path) -> None:
    path = write_config(tmp_path, "remote-management:\n  secret-key: s3cret\n  viewer-keys: [look-only] # viewers\n")
    loaded = load_config(path)
    text = path.read_text()
    assert "look-only" not in text and "s3cret" not in text
    (viewer_hash,) = loaded.config.remote_management.viewer_keys
    assert bcrypt.checkpw(b"look-only", viewer_hash.encode())
    assert viewer_hash in text


TRUSTED = CONFIG + "trusted-proxies: [127.0.0.1/32]\n"


async def test_forwarded_for_is_ignored_without_trusted_proxies(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, _, _ = await get(server, "/config", {**bearer(SECRET), "X-Forwarded-For": "203.0.113.9"})
    assert status == 200  # the socket peer is loopback; the header is only a claim


async def test_remote_client_behind_trusted_proxy_is_refused(proxy: ProxyFactory) -> None:
    server = await proxy(TRUSTED)
    remote = {"X-Forwarded-For": "203.0.113.9"}
    status, body, _ = await get(server, "/config", {**bearer(SECRET), **remote})
    assert (status, body) == (403, b'{"error":"remote management disabled"}')
    # Not counted as a failure: the same client is still refused for the same reason, not banned.
    for _ in range(6):
        status, body, _ = await get(server, "/config", {**bearer("wrong"), **remote})
    assert body == b'{"error":"remote management disabled"}'
    # A local client forwarded by the trusted proxy is local.
    status, _, _ = await get(server, "/config", {**bearer(SECRET), "X-Forwarded-For": "127.0.0.1"})
    assert status == 200
    # A spoofed left-most entry does not help: the proxy appended the real address on the right.
    status, _, _ = await get(server, "/config", {**bearer(SECRET), "X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
    assert status == 403


async def test_allow_remote_and_bans_are_per_client_ip(proxy: ProxyFactory) -> None:
    server = await proxy(TRUSTED.replace("remote-management:\n", "remote-management:\n  allow-remote: true\n"))
    a = {"X-Forwarded-For": "203.0.113.1"}
    b = {"X-Forwarded-For": "203.0.113.2"}
    assert (await get(server, "/config", {**bearer(SECRET), **a}))[0] == 200
    for _ in range(5):
        assert (await get(server, "/config", {**bearer("wrong"), **a}))[0] == 401
    assert (await get(server, "/config", {**bearer(SECRET), **a}))[0] == 403
    assert (await get(server, "/config", {**bearer(SECRET), **b}))[0] == 200


async def test_management_password_env_works_remotely_in_plaintext(
    proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MANAGEMENT_PASSWORD", "  env-password  ")
    server = await proxy("host: 127.0.0.1\ntrusted-proxies: [127.0.0.1/32]\n")
    remote = {"X-Forwarded-For": "198.51.100.7"}
    status, _, _ = await get(server, "/config", {**bearer("env-password"), **remote})
    assert status == 200  # enabled without secret-key, and remote allowed
    status, _, _ = await get(server, "/config", {**bearer("env-passwor"), **remote})
    assert status == 401
    # Never hashed, never written: the file is as the user left it.
    assert (tmp_path / "config.yaml").read_text() == "host: 127.0.0.1\ntrusted-proxies: [127.0.0.1/32]\n"


async def test_secret_added_and_removed_at_runtime(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy("host: 127.0.0.1\n")
    holder = server.app[SERVICES].holder
    assert (await get(server, "/config", bearer(SECRET)))[0] == 404
    holder.swap(build_runtime(load_config(write_config(tmp_path, CONFIG))))
    assert (await get(server, "/config", bearer(SECRET)))[0] == 200
    holder.swap(build_runtime(load_config(write_config(tmp_path, "host: 127.0.0.1\n"))))
    assert (await get(server, "/config", bearer(SECRET)))[:2] == (404, b"")


async def test_reload_status_shape(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, body, _ = await get(server, "/reload-status", bearer(VIEWER))
    assert status == 200
    data = json.loads(body)
    assert set(data) == {"time", "ok", "message", "restart_required"}
    assert data["ok"] is True and data["restart_required"] == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (5, "5s"), (60, "1m0s"), (1781.4, "29m41s"), (1800, "30m0s"), (3600, "1h0m0s")]
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
