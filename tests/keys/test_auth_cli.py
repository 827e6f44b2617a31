"""`cliproxy auth status|renew` over a real config and auth-dir (renew against the fake OAuth provider)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.cli import main
from cliproxy.credentials.files import format_time
from tests.fakes.fixtures import Starter
from tests.fakes.oauth import FakeOAuth
from tests.fakes.upstreams import FakeUpstream

CONFIG = """
auth-dir: ./auths
api-keys: [sk-client-0001]
claude-api-key:
  - api-key: sk-ant-provider-secret-9999
gemini-api-key:
  - api-key: ""
    disabled: true
openai-compatibility:
  - name: compat
    base-url: https://compat.example/v1
    api-key-entries:
      - api-key: sk-compat-secret-7777
"""


@pytest.fixture
async def fake_oauth(aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> FakeOAuth:
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def write_auth(directory: Path, name: str, data: dict[str, Any]) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    return path


def setup(tmp_path: Path, fake: FakeOAuth | None = None) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    auths = tmp_path / "auths"
    refresh = fake.issue_refresh_token("claude") if fake else "rt-unused-0000"
    write_auth(
        auths,
        "claude-user.json",
        {
            "type": "claude",
            "email": "user@example.com",
            "access_token": "at-old-claude-secret",
            "refresh_token": refresh,
            "expired": format_time(datetime.now(UTC) - timedelta(minutes=5)),
            "last_refresh": "2026-01-02T03:04:05Z",
        },
    )
    (auths / "broken.json").write_text("{not json")
    return config


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_status_lists_every_credential_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = setup(tmp_path)
    code, out, err = await run(capsys, "--config", str(config), "auth", "status")
    assert code == 0, err
    for name in ("claude-api-key[0]", "gemini-api-key[0]", "openai-compatibility[0].api-key-entries[0]"):
        assert name in out
    assert "claude-user.json" in out and "user@example.com" in out
    assert "sk-…9999" in out and "sk-ant-provider-secret-9999" not in out and "at-old-claude-secret" not in out
    assert "expired (renewable)" in out and "2026-01-02T03:04:05Z" in out
    assert "invalid" in out  # broken.json is reported, not hidden
    assert "unknown" in out  # cooldowns need --url

    code, out, _ = await run(capsys, "auth", "status", "--config", str(config), "--json", "claude-api-key[0]")
    (row,) = json.loads(out)
    assert row["secret"] == "present (sk-…9999)" and row["state"] == "ok" and row["cooldown"] == "unknown"
    code, _, err = await run(capsys, "auth", "status", "--config", str(config), "nope")
    assert code == 1 and "no credential named 'nope'" in err


async def test_renew_refreshes_oauth_files(
    tmp_path: Path, fake_oauth: FakeOAuth, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    config = setup(tmp_path, fake_oauth)
    code, out, err = await run(capsys, "auth", "renew", "--config", str(config), "claude-user", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["result"] == "renewed"
    data = json.loads((tmp_path / "auths" / "claude-user.json").read_text())
    assert data["access_token"] != "at-old-claude-secret"
    assert fake_oauth.requests["claude:refresh"] == 1
    code, out, _ = await run(capsys, "auth", "status", "--config", str(config), "claude-user.json", "--json")
    assert json.loads(out)[0]["state"] == "ok"


async def test_renew_reports_failures(
    tmp_path: Path, fake_oauth: FakeOAuth, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    fake_oauth.refresh_failure = (400, "invalid_grant")
    config = setup(tmp_path, fake_oauth)
    code, out, _ = await run(capsys, "auth", "renew", "--config", str(config))
    assert code == 1
    assert "failed" in out and "claude-user.json" in out
    code, _, err = await run(capsys, "auth", "renew", "--config", str(config), "claude-api-key[0]")
    assert code == 1 and "not an OAuth credential" in err


# -- auth test: one live request per credential, against the fake upstream ---------------------------


def probe_setup(tmp_path: Path, base: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
auth-dir: ./auths
api-keys: [sk-client-0001]
claude-api-key:
  - api-key: sk-ant-good-0001
    base-url: {base}
gemini-api-key:
  - api-key: gm-good-0001
    base-url: {base}
  - api-key: gm-off-0002
    base-url: {base}
    disabled: true
openai-compatibility:
  - name: compat
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-compat-good-0001
      - api-key: sk-compat-revoked-0002
    models:
      - name: gpt-fake
"""
    )
    write_auth(
        tmp_path / "auths",
        "claude-user.json",
        {
            "type": "claude",
            "email": "user@example.com",
            "access_token": "at-claude-subscription-0001",
            "refresh_token": "rt-claude-0001",
            "expired": format_time(datetime.now(UTC) + timedelta(hours=1)),
        },
    )
    return config


async def test_auth_test_sends_one_minimal_request_per_credential(
    tmp_path: Path,
    upstream: tuple[FakeUpstream, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = upstream
    monkeypatch.setenv("CLIPROXY_CLAUDE_API_URL", base)
    fake.fail(401, key="sk-compat-revoked-0002", times=0, body=b'{"error":{"message":"key revoked"}}')
    config = probe_setup(tmp_path, base)

    code, out, err = await run(capsys, "auth", "test", "--config", str(config), "--json")
    assert code == 1, err  # one credential failed
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["claude-api-key[0]"]["result"] == "ok"
    assert rows["gemini-api-key[0]"]["result"] == "ok"
    assert rows["gemini-api-key[1]"] == {**rows["gemini-api-key[1]"], "result": "skipped", "detail": "disabled"}
    assert rows["openai-compatibility[0].api-key-entries[0]"]["result"] == "ok"
    revoked = rows["openai-compatibility[0].api-key-entries[1]"]
    assert revoked["result"] == "failed" and revoked["detail"] == "HTTP 401: key revoked"
    assert rows["claude-user.json"]["result"] == "skipped"  # a subscription: off by default
    assert "--include-subscriptions" in rows["claude-user.json"]["detail"]
    assert not fake.calls("at-claude-subscription-0001")
    # Minimal requests: a few output tokens, one short prompt, in each upstream's own dialect.
    claude_call = fake.calls("sk-ant-good-0001")[0]
    assert claude_call.path == "/v1/messages" and claude_call.json["max_tokens"] <= 16
    gemini_call = fake.calls("gm-good-0001")[0]
    assert gemini_call.path.endswith(":generateContent")
    assert gemini_call.json["generationConfig"]["maxOutputTokens"] <= 16
    assert fake.calls("sk-compat-good-0001")[0].json["model"] == "gpt-fake"
    assert "sk-compat-revoked-0002" not in out and "sk-ant-good-0001" not in out

    code, out, _ = await run(capsys, "auth", "test", "--config", str(config), "claude-user", "--include-subscriptions")
    assert code == 0, out
    assert out.splitlines()[0].split()[:4] == ["NAME", "PROVIDER", "MODEL", "RESULT"]
    assert "claude-user.json" in out and " ok " in out
    (call,) = fake.calls("at-claude-subscription-0001")
    assert call.header("Authorization") == "Bearer at-claude-subscription-0001"

    code, out, _ = await run(
        capsys, "auth", "test", "--config", str(config), "openai-compatibility[0].api-key-entries[0]"
    )
    assert code == 0 and "ok" in out and "failed" not in out


async def test_status_shows_the_running_proxys_cooldowns(
    tmp_path: Path,
    upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import bcrypt
    import openai

    fake, base = upstream
    admin = "admin-secret-value"
    admin_hash = bcrypt.hashpw(admin.encode(), bcrypt.gensalt(rounds=4)).decode()
    proxy = await start_proxy(
        f"""
host: 127.0.0.1
api-keys: [sk-client-0001]
remote-management:
  secret-key: "{admin_hash}"
openai-compatibility:
  - name: compat
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-compat-a-0001
      - api-key: sk-compat-b-0002
    models:
      - name: gpt-fake
"""
    )
    fake.fail(429, key="sk-compat-a-0001", times=0)
    fake.fail(429, key="sk-compat-b-0002", times=0)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-client-0001", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "x"}])
    config = tmp_path / "config.yaml"

    code, out, err = await run(
        capsys, "auth", "status", "--config", str(config), "--url", proxy.url, "--key", admin, "--json"
    )
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    for name in ("openai-compatibility[0].api-key-entries[0]", "openai-compatibility[0].api-key-entries[1]"):
        assert rows[name]["cooldown"].startswith("gpt-fake until 20"), rows[name]
    code, out, _ = await run(capsys, "auth", "status", "--config", str(config), "--url", proxy.url, "--key", admin)
    assert code == 0 and "gpt-fake until" in out and "sk-compat-a-0001" not in out
    code, _, err = await run(capsys, "auth", "status", "--config", str(config), "--url", proxy.url, "--key", "wrong")
    assert code == 1 and "invalid management key" in err
