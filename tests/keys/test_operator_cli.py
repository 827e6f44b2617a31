"""The operator CLI against a running proxy (the aiohttp test server on a free port): whoami,
models and every keys action, as tables and as JSON, plus its error exits."""

from __future__ import annotations

import asyncio
import json

import bcrypt
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.cli import main
from tests.conftest import ProxyFactory
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream

ADMIN = "admin-secret-value"
CONFIG = f"""
host: 127.0.0.1
api-keys:
  - sk-plain-cli-0001
  - name: scoped
    key: sk-scoped-cli-0001
    models: ["gpt-*"]
    max-requests-per-minute: 10
    expires: 2999-12-31
remote-management:
  secret-key: "{bcrypt.hashpw(ADMIN.encode(), bcrypt.gensalt(rounds=4)).decode()}"
"""


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in a worker thread (it blocks on HTTP) while the test server serves on this loop."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def test_whoami_table_and_json(proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]) -> None:
    server = await proxy(CONFIG)
    code, out, _ = await run(capsys, "whoami", "--url", url(server), "--key", "sk-scoped-cli-0001")
    assert code == 0
    assert "scoped" in out and "gpt-*" in out
    assert "3000-01-01T00:00:00Z" in out  # a date expiry means "through that day" (UTC)
    assert "max-requests-per-minute" in out
    code, out, _ = await run(capsys, "whoami", "--url", url(server), "--key", "sk-scoped-cli-0001", "--json")
    data = json.loads(out)
    assert data["name"] == "scoped" and data["limits"]["max-requests-per-minute"] == 10


async def test_whoami_key_from_env(
    proxy: ProxyFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await proxy(CONFIG)
    monkeypatch.setenv("CLIPROXY_API_KEY", "sk-plain-cli-0001")
    monkeypatch.setenv("CLIPROXY_URL", url(server))
    code, out, _ = await run(capsys, "whoami", "--json")
    assert code == 0
    assert json.loads(out)["models"] == ["*"]


async def test_errors_exit_nonzero_with_the_proxy_message(
    proxy: ProxyFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await proxy(CONFIG)
    monkeypatch.delenv("CLIPROXY_API_KEY", raising=False)
    code, _, err = await run(capsys, "whoami", "--url", url(server), "--key", "sk-wrong")
    assert code == 1 and "401: Invalid API key" in err
    code, _, err = await run(capsys, "whoami", "--url", url(server))
    assert code == 2 and "CLIPROXY_API_KEY" in err
    code, _, err = await run(capsys, "keys", "list", "--url", "http://127.0.0.1:1", "--key", ADMIN)
    assert code == 2 and "cannot reach" in err


async def test_keys_commands(proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]) -> None:
    server = await proxy(CONFIG)
    common = ("--url", url(server), "--key", ADMIN)
    code, out, err = await run(
        capsys, "keys", "create", "ci", "--models", "claude-*,gpt-4o", "--budget", "2.5", "--rpm", "5", *common
    )
    assert code == 0, err
    assert "shown once" in out
    new_key = out.split(": ", 1)[1].split()[0]
    code, out, _ = await run(capsys, "whoami", "--url", url(server), "--key", new_key, "--json")
    assert code == 0 and json.loads(out)["models"] == ["claude-*", "gpt-4o"]

    code, out, _ = await run(capsys, "keys", "list", *common)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["NAME", "KEY", "MODELS"]
    assert any(line.startswith("ci ") for line in lines) and any(line.startswith("scoped ") for line in lines)
    assert new_key not in out and "sk-scoped-cli-0001" not in out

    code, out, _ = await run(capsys, "keys", "update", "ci", "--concurrent", "3", *common, "--json")
    assert code == 0 and json.loads(out)["client-key"]["max-concurrent"] == 3
    code, out, _ = await run(capsys, "keys", "disable", "ci", *common)
    assert (code, out.strip()) == (0, "ci: disabled")
    code, _, err = await run(capsys, "whoami", "--url", url(server), "--key", new_key)
    assert code == 1 and "API key disabled" in err
    code, out, _ = await run(capsys, "keys", "enable", "ci", *common)
    assert (code, out.strip()) == (0, "ci: enabled")

    code, out, _ = await run(capsys, "keys", "rotate", "ci", *common, "--json")
    rotated = json.loads(out)["key"]
    assert code == 0 and rotated != new_key
    assert (await run(capsys, "whoami", "--url", url(server), "--key", new_key))[0] == 1
    assert (await run(capsys, "whoami", "--url", url(server), "--key", rotated))[0] == 0

    code, out, _ = await run(capsys, "keys", "delete", "ci", *common)
    assert (code, out.strip()) == (0, "ci: deleted")
    code, _, err = await run(capsys, "keys", "delete", "ci", *common)
    assert code == 1 and "404" in err
    code, _, err = await run(capsys, "keys", "list", "--url", url(server), "--key", "wrong-admin")
    assert code == 1 and "invalid management key" in err


async def test_models_lists_what_the_key_may_use(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = upstream
    proxy = await start_proxy(
        f"""
host: 127.0.0.1
api-keys:
  - sk-plain-cli-0001
  - {{name: scoped, key: sk-scoped-cli-0001, models: ["gpt-*"]}}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-up-0001}}]
    models: [{{name: gpt-fake}}, {{name: gpt-other}}, {{name: house-model}}]
"""
    )
    code, out, err = await run(capsys, "models", "--url", proxy.url, "--key", "sk-scoped-cli-0001")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split() == ["MODEL", "OWNED", "BY"]
    assert sorted(line.split()[0] for line in lines) == ["gpt-fake", "gpt-other"]
    code, out, _ = await run(capsys, "models", "--url", proxy.url, "--key", "sk-plain-cli-0001", "--json")
    assert code == 0 and {m["id"] for m in json.loads(out)} == {"gpt-fake", "gpt-other", "house-model"}
    code, _, err = await run(capsys, "models", "--url", proxy.url, "--key", "sk-nope")
    assert code == 1 and "401: Invalid API key" in err
