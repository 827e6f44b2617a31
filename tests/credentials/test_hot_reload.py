"""auth-dir changes reach a running server through the watcher: adds, edits, atomic replaces, deletes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import bcrypt
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import app_from_config, write_config
from tests.fakes.oauth import FakeOAuth
from tests.fakes.upstreams import FakeUpstream

CLIENT_KEY = "sk-client-hot-reload"
SECRET = "mgmt-secret-hot-reload"
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
LATER = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
MODEL = "claude-sonnet-4-5-20250929"
DEADLINE = 10.0  # generous: the 2-core CI box is shared; the watcher debounce is 150 ms


def claude_file(token: str, **extra: Any) -> bytes:
    data = {"type": "claude", "email": "a@x.com", "access_token": token, "expired": LATER, **extra}
    return json.dumps(data).encode()


def atomic_replace(path: Path, data: bytes, mode: int = 0o600) -> None:
    """What editors, `cliproxy login` and CLIProxyAPI do: write a temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    end = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < end, "auth-dir change not applied before the deadline"
        await asyncio.sleep(0.05)


class Proxy:
    def __init__(self, server: TestServer, upstream: FakeUpstream, auths: Path) -> None:
        self.server, self.upstream, self.auths = server, upstream, auths
        base = str(server.make_url("")).rstrip("/")
        self.client = anthropic.AsyncAnthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)

    async def bearer_used(self) -> str | None:
        """Send one message; the Authorization the upstream saw, or None when the proxy refused."""
        before = len(self.upstream.seen)
        try:
            await self.client.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        except anthropic.APIStatusError:
            return None
        assert len(self.upstream.seen) == before + 1
        return self.upstream.seen[-1].header("Authorization")

    async def auth_files(self) -> dict[str, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.server.make_url("/v0/management/auth-files"), headers={"X-Management-Key": SECRET}) as r,
        ):
            assert r.status == 200
            return {f["name"]: f for f in (await r.json())["files"]}


@pytest.fixture
async def running(
    tmp_path: Path,
    fake_oauth: FakeOAuth,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> Proxy:
    upstream = FakeUpstream()
    up = await aiohttp_server(upstream.app())
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_CLAUDE_API_URL", str(up.make_url("")).rstrip("/"))
    auths = tmp_path / "auths"
    auths.mkdir()
    config = write_config(
        tmp_path,
        f"host: 127.0.0.1\napi-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\n"
        f"remote-management:\n  secret-key: '{SECRET_HASH}'\n",
    )
    server = await aiohttp_server(app_from_config(config))
    return Proxy(server, upstream, auths)


async def test_add_edit_replace_and_delete_are_live_without_restart(running: Proxy) -> None:
    path = running.auths / "claude-a.json"
    assert await running.bearer_used() is None  # nothing serves claude yet

    atomic_replace(path, claude_file("at-first"))  # add (a rename into the directory)

    async def serves(token: str) -> bool:
        return await running.bearer_used() == f"Bearer {token}"

    await until(lambda: serves("at-first"))

    path.write_bytes(claude_file("at-edited"))  # edit in place
    await until(lambda: serves("at-edited"))

    atomic_replace(path, claude_file("at-replaced", prefix="team"))  # atomic replace
    await until(lambda: serves("at-replaced"))

    async def prefixed() -> bool:
        before = len(running.upstream.seen)
        try:
            await running.client.messages.create(
                model=f"team/{MODEL}", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
        except anthropic.APIStatusError:
            return False
        return len(running.upstream.seen) == before + 1

    await until(prefixed)

    path.unlink()  # delete

    async def gone() -> bool:
        return await running.bearer_used() is None and "claude-a.json" not in await running.auth_files()

    await until(gone)


async def test_invalid_and_exposed_files_are_reported(running: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    bad = running.auths / "claude-bad.json"
    bad.write_text('{"type": "claude", "email": "no-token@x.com"}')
    os.chmod(bad, 0o600)
    open_file = running.auths / "claude-open.json"
    with caplog.at_level(logging.WARNING):
        atomic_replace(open_file, claude_file("at-secret-open-token"), mode=0o644)

        async def reported() -> bool:
            files = await running.auth_files()
            return "claude-bad.json" in files and "claude-open.json" in files

        await until(reported)
    files = await running.auth_files()
    assert files["claude-bad.json"]["status"] == "error"
    assert "access_token or refresh_token is required" in files["claude-bad.json"]["status_message"]
    assert files["claude-open.json"]["status"] == "active"
    assert any("readable by group or others" in r.getMessage() for r in caplog.records)
    assert "at-secret-open-token" not in caplog.text
    assert await running.bearer_used() == "Bearer at-secret-open-token"  # still served, only warned about
