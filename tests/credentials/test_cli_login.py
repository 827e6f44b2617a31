"""`cliproxy login …` as a user runs it: a real subprocess against the fake OAuth provider."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import aiohttp

from tests.fakes.oauth import FakeOAuth


async def start_cli(fake: FakeOAuth, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, **fake.env()}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cliproxy", "login", *args,
        env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_cli_claude_login_no_browser(tmp_path: Path, fake_oauth: FakeOAuth) -> None:
    proc = await start_cli(fake_oauth, "claude", "--no-browser", "--port", "0", "--auth-dir", str(tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    url = ""
    while not url:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "the CLI exited before printing the URL"
        match = re.search(r"https?://\S+/claude/oauth/authorize\S+", line)
        url = match.group(0) if match else ""
    async with aiohttp.ClientSession() as browser, browser.get(url) as resp:  # follows to the CLI's callback
        assert resp.status == 200
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert "terms of service" in err.decode()
    saved = tmp_path / "claude-user@example.com.json"
    assert f"Saved {saved}" in out.decode()
    assert json.loads(saved.read_text())["email"] == "user@example.com"


async def test_cli_codex_device_login(tmp_path: Path, fake_oauth: FakeOAuth) -> None:
    proc = await start_cli(fake_oauth, "codex", "--device", "--auth-dir", str(tmp_path))
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "ABCD-1234" in out.decode()
    assert len(list(tmp_path.glob("codex-*-user@example.com-plus.json"))) == 1


async def test_cli_device_is_codex_only(tmp_path: Path, fake_oauth: FakeOAuth) -> None:
    proc = await start_cli(fake_oauth, "claude", "--device", "--auth-dir", str(tmp_path))
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"only available for codex" in err
