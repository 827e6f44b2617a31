"""Logs never carry a secret: the redactor on a running app, and a grep over a real process's output."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from cliproxy.clientkeys import redact
from cliproxy.config.write import atomic_write_text
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.server.processes import free_port, spawn, stop, wait_healthy

CLIENT_KEY = "sk-client-secret-0001"
OBJECT_KEY = "sk-object-secret-0002"
CLAUDE_KEY = "sk-ant-provider-secret-0003"
COMPAT_KEY = "sk-or-compat-secret-0004"
GEMINI_KEY = "AIzaGeminiSecret0005"
HEADER_TOKEN = "hdr-token-secret-0006"
PROXY_PASSWORD = "proxy-pass-secret-0007"
MGMT_SECRET = "mgmt-plain-secret-0008"
ENV_PASSWORD = "env-mgmt-password-0009"
ACCESS_TOKEN = "oauth-access-token-0010"
REFRESH_TOKEN = "oauth-refresh-token-0011"
NEW_KEY = "sk-added-by-reload-0012"
VIEWER_KEY = "viewer-plain-secret-0013"

CONFIG = f"""
host: 127.0.0.1
port: {{port}}
debug: true
log-format: {{log_format}}
logging-to-file: true
logs-dir: ./logs
auth-dir: ./auths
proxy-url: socks5://user:{PROXY_PASSWORD}@127.0.0.1:1080
api-keys:
  - {CLIENT_KEY}
  - name: team
    key: {OBJECT_KEY}
remote-management:
  secret-key: {MGMT_SECRET}
  viewer-keys: [{VIEWER_KEY}]
claude-api-key:
  - api-key: {CLAUDE_KEY}
    headers:
      Authorization: Bearer {HEADER_TOKEN}
gemini-api-key:
  - api-key: {GEMINI_KEY}
openai-compatibility:
  - name: compat
    base-url: https://example.invalid/v1
    api-key-entries:
      - api-key: {COMPAT_KEY}
"""
AUTH_FILE = {"type": "claude", "email": "a@example.com", "access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN}
ALL_SECRETS = [v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str) and "SECRET" in v.upper()]
ALL_SECRETS += [GEMINI_KEY, HEADER_TOKEN, PROXY_PASSWORD, ENV_PASSWORD, ACCESS_TOKEN, REFRESH_TOKEN, NEW_KEY]


async def test_redactor_masks_configured_secrets_and_follows_reloads(
    proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await proxy(CONFIG.format(port=0, log_format="text"))
    probe = logging.getLogger("tests.probe")
    probe.warning("client %s provider %s header %s", CLIENT_KEY, CLAUDE_KEY, f"Bearer {HEADER_TOKEN}")
    probe.info("proxy socks5://user:%s@host", PROXY_PASSWORD)
    try:
        raise RuntimeError(f"upstream rejected {COMPAT_KEY}")
    except RuntimeError:
        probe.exception("call failed")
    assert NEW_KEY not in caplog.text  # (nothing logged it yet)
    path = server.app[SERVICES].holder.current.config_path
    atomic_write_text(path, path.read_text().replace(f"  - {CLIENT_KEY}\n", f"  - {CLIENT_KEY}\n  - {NEW_KEY}\n"))
    assert (await server.app[SERVICES].reloader.reload_now()).ok
    probe.warning("new key %s", NEW_KEY)
    text = caplog.text
    for secret in (CLIENT_KEY, CLAUDE_KEY, HEADER_TOKEN, PROXY_PASSWORD, COMPAT_KEY, NEW_KEY):
        assert secret not in text, secret
    assert redact(CLIENT_KEY) in text and redact(NEW_KEY) in text and redact(COMPAT_KEY) in text
    assert "Traceback" in text  # the exception was logged, masked


@pytest.mark.subprocess
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_full_run_logs_contain_no_secret(tmp_path: Path, log_format: str) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(port=port, log_format=log_format))
    (tmp_path / "auths").mkdir()
    (tmp_path / "auths" / "claude-a.json").write_text(json.dumps(AUTH_FILE))
    proc = spawn(["-m", "cliproxy", "--config", str(config)], cwd=tmp_path, env={"MANAGEMENT_PASSWORD": ENV_PASSWORD})
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(proc, f"{base}/healthz")
        async with aiohttp.ClientSession() as session:
            for headers, query in [
                ({"Authorization": f"Bearer {CLIENT_KEY}"}, ""),
                ({"x-api-key": OBJECT_KEY}, ""),
                ({}, f"?key={CLIENT_KEY}"),
                ({"Authorization": f"Bearer {CLAUDE_KEY}"}, ""),  # a wrong key that is a provider secret
                ({"x-goog-api-key": GEMINI_KEY}, ""),
            ]:
                async with session.get(f"{base}/v1/models{query}", headers=headers) as r:
                    await r.read()
                async with session.post(f"{base}/v1/chat/completions{query}", headers=headers, json={}) as r:
                    await r.read()
            for key in (MGMT_SECRET, ENV_PASSWORD, VIEWER_KEY, "wrong-mgmt-key"):
                async with session.get(f"{base}/v0/management/config", headers={"X-Management-Key": key}) as r:
                    await r.read()
            # A reload that adds a key, then a request with it, then a bad edit that names it.
            text = config.read_text()
            config.write_text(text.replace(f"  - {CLIENT_KEY}\n", f"  - {CLIENT_KEY}\n  - {NEW_KEY}\n"))
            deadline = time.monotonic() + 10
            while True:
                async with session.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {NEW_KEY}"}) as r:
                    if r.status != 401:
                        break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            config.write_text(config.read_text() + f"api-keys: [{NEW_KEY}\n")
            deadline = time.monotonic() + 10
            while True:
                async with session.get(
                    f"{base}/v0/management/reload-status", headers={"X-Management-Key": ENV_PASSWORD}
                ) as r:
                    if (await r.json())["ok"] is False:
                        break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    finally:
        code, out, err = stop(proc)
    logs = out + err
    assert code == 0, logs
    assert "GET /v1/models " in logs, logs  # the debug access log ran
    assert "reloaded (generation 1)" in logs
    assert "invalid YAML" in logs  # the bad edit was logged
    assert "management keys hashed with bcrypt" in logs  # logged before the config was known, not lost
    for secret in ALL_SECRETS:
        assert secret not in logs, f"{secret} leaked into the logs"
    if log_format == "json":
        for line in err.splitlines():
            if line.strip():
                json.loads(line)
    # `logging-to-file` wrote the same run to disk, masked the same way.
    written = (tmp_path / "logs" / "main.log").read_text()
    assert "GET /v1/models " in written and "reloaded (generation 1)" in written and "invalid YAML" in written
    for secret in ALL_SECRETS:
        assert secret not in written, f"{secret} leaked into main.log"


def test_auth_file_tokens_are_collected(tmp_path: Path) -> None:
    from cliproxy.logs import collect_secrets
    from cliproxy.watch import load_runtime

    (tmp_path / "auths").mkdir()
    (tmp_path / "auths" / "claude-a.json").write_text(json.dumps(AUTH_FILE))
    (tmp_path / "config.yaml").write_text("auth-dir: ./auths\n")
    runtime = load_runtime(tmp_path / "config.yaml")
    assert len(runtime.auth_files) == 1
    assert {ACCESS_TOKEN, REFRESH_TOKEN} <= collect_secrets(runtime)
