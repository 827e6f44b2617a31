"""Management roles over real HTTP: viewers read every GET route with secrets redacted, and every
other method on every registered route is 403 for them and allowed for the admin."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import bcrypt
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.management.guard import KEYLESS_PATHS
from cliproxy.management.roles import redact_tree
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory

ADMIN = "admin-secret-value"
VIEWER = "viewer-secret-value"
ADMIN_HASH = bcrypt.hashpw(ADMIN.encode(), bcrypt.gensalt(rounds=4)).decode()
VIEWER_HASH = bcrypt.hashpw(VIEWER.encode(), bcrypt.gensalt(rounds=4)).decode()
SECRETS = (
    "sk-client-plain-secret-1111",
    "sk-client-object-secret-2222",
    "sk-ant-provider-secret-3333",
    "proxy-password-4444",
    "header-token-secret-5555",
    "sk-compat-entry-secret-6666",
    ADMIN_HASH,
    VIEWER_HASH,
)
SAMPLES = Path(__file__).resolve().parents[2] / "auth-dir-sample"
FILE_SECRETS = ("claude-access-secret-7777", "claude-refresh-secret-8888", "vertex-private-key-secret-9999")
# GET routes that change state (they start an OAuth login or pop the usage queue): admin only.
ADMIN_ONLY_GETS = frozenset(
    {
        "/v0/management/anthropic-auth-url",
        "/v0/management/codex-auth-url",
        "/v0/management/antigravity-auth-url",
        "/v0/management/xai-auth-url",
        "/v0/management/kimi-auth-url",
        "/v0/management/usage-queue",
    }
)
CONFIG = f"""
host: 127.0.0.1
auth-dir: ./auths
api-keys:
  - {SECRETS[0]}
  - name: team-a
    key: {SECRETS[1]}
    models: ["claude-*"]
claude-api-key:
  - api-key: {SECRETS[2]}
    proxy-url: "http://user:{SECRETS[3]}@proxy.local:3128"
    headers:
      X-Custom-Auth: {SECRETS[4]}
openai-compatibility:
  - name: compat
    base-url: https://compat.local/v1
    api-key-entries:
      - api-key: {SECRETS[5]}
remote-management:
  secret-key: "{ADMIN_HASH}"
  viewer-keys: ["{VIEWER_HASH}"]
"""


def management_routes(server: TestServer) -> list[tuple[str, str]]:
    """(method, concrete path) for every route registered on the management sub-app."""
    app = server.app
    assert app is not None
    subapps = [r for r in app.router.resources() if isinstance(r, web.PrefixedSubAppResource)]
    (mgmt,) = [r for r in subapps if r.canonical == "/v0/management"]
    out: list[tuple[str, str]] = []
    for resource in mgmt._app.router.resources():
        path = re.sub(r"\{[^}]+\}", "probe", resource.canonical)
        for route in resource:
            if route.method != "HEAD":
                out.append((route.method, path))
    return sorted(set(out))


def seed_auth_dir(directory: Path) -> None:
    """The sample auth files with secrets of this test, in the auth-dir the config names."""
    auths = directory / "auths"
    auths.mkdir()
    claude = json.loads((SAMPLES / "claude-user@example.com.json").read_text())
    claude.update(access_token=FILE_SECRETS[0], refresh_token=FILE_SECRETS[1])
    (auths / "claude-user.json").write_text(json.dumps(claude))
    vertex = json.loads((SAMPLES / "vertex-fake-project-123.json").read_text())
    vertex["service_account"]["private_key"] = vertex["service_account"]["private_key"].replace(
        "-----END", FILE_SECRETS[2] + "\n-----END", 1
    )
    (auths / "vertex-project.json").write_text(json.dumps(vertex))
    for path in auths.iterdir():
        path.chmod(0o600)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(server: TestServer, method: str, path: str, key: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.make_url(path), headers=bearer(key), json={}) as r,
    ):
        return r.status, await r.text()


async def test_viewer_and_admin_on_every_management_route(proxy: ProxyFactory, tmp_path: Path) -> None:
    seed_auth_dir(tmp_path)
    server = await proxy(CONFIG)
    routes = management_routes(server)
    assert ("GET", "/v0/management/config") in routes
    assert server.app is not None
    config_path = server.app[SERVICES].holder.current.config_path
    before = config_path.read_bytes()
    for method, path in routes:
        status, text = await call(server, method, path, VIEWER)
        if path in KEYLESS_PATHS:  # no key needed at all (the OAuth paste-back), so no role either
            continue
        if method == "GET" and path not in ADMIN_ONLY_GETS:
            admin_status, _ = await call(server, method, path, ADMIN)
            assert status == admin_status, (path, status, text)  # a viewer reads what the admin reads
            for secret in SECRETS + FILE_SECRETS:
                assert secret not in text, (path, secret)
        else:
            assert status == 403, (method, path, status)
            assert "admin role required" in text
    assert config_path.read_bytes() == before
    for method, path in routes:
        status, text = await call(server, method, path, ADMIN)
        assert status not in (401, 403), (method, path, status, text)


async def test_viewer_sees_config_redacted_admin_sees_it_whole(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    status, viewer_text = await call(server, "GET", "/v0/management/config", VIEWER)
    assert status == 200
    status, admin_text = await call(server, "GET", "/v0/management/config", ADMIN)
    assert status == 200
    assert SECRETS[2] in admin_text and SECRETS[1] in admin_text
    assert "sk-…3333" in viewer_text  # recognisable, not usable
    assert "team-a" in viewer_text and "claude-*" in viewer_text  # non-secret fields survive


def test_redact_tree_rules() -> None:
    tree = {
        "api-keys": ["sk-aaaaaaaaaaaa1234", {"name": "n", "key": "sk-bbbbbbbbbbbb5678", "key-sha256": "ab" * 32}],
        "access_token": "eyJhbGciOi.secret.value9999",
        "client_key": "team-a",
        "headers": {"Authorization": "Bearer abcdefghijkl", "Accept": "application/json"},
        "proxy-url": "socks5://u:p4ssw0rd@h:1080",
        "models": ["gpt-*"],
    }
    out = redact_tree(tree)
    assert out["api-keys"][0] == "sk-…1234"
    assert out["api-keys"][1] == {"name": "n", "key": "sk-…5678", "key-sha256": "aba…abab"}
    assert out["access_token"] == "eyJ…9999"
    assert out["client_key"] == "team-a"
    assert out["headers"] == {"Authorization": "Bea…ijkl", "Accept": "application/json"}
    assert out["proxy-url"] == "socks5://u:…@h:1080"
    assert out["models"] == ["gpt-*"]


async def test_viewer_reads_auth_files_with_tokens_redacted(proxy: ProxyFactory, tmp_path: Path) -> None:
    seed_auth_dir(tmp_path)
    server = await proxy(CONFIG)
    status, listing = await call(server, "GET", "/v0/management/auth-files", VIEWER)
    assert status == 200 and "claude-user.json" in listing and "vertex-project.json" in listing
    for name in ("claude-user.json", "vertex-project.json"):
        path = f"/v0/management/auth-files/download?name={name}"
        status, text = await call(server, "GET", path, VIEWER)
        assert status == 200, text
        assert not any(secret in text for secret in FILE_SECRETS), text
        admin_status, admin_text = await call(server, "GET", path, ADMIN)
        assert admin_status == 200 and any(secret in admin_text for secret in FILE_SECRETS)
    data = json.loads(
        (await call(server, "GET", "/v0/management/auth-files/download?name=claude-user.json", VIEWER))[1]
    )
    assert data["email"] == "user@example.com" and data["access_token"] == "cla…7777"
