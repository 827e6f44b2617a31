"""The real Claude Code CLI (npm `@anthropic-ai/claude-code`) pointed at the proxy with
`ANTHROPIC_BASE_URL`: it uses a GPT model through the `claude-fable-5-dd-…` model-list cloak (a
`codex-api-key` upstream serves it), and a Claude subscription (a cloaking OAuth credential) serves
its own requests untouched.

The CLI is installed from npm into `build/claude-code/` (gitignored) on first use; the test is
skipped, with the reason shown, only when npm or its registry cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from cliproxy.routing.catalog import cloak
from tests.conftest import app_from_config, write_config
from tests.fakes.upstreams import FakeUpstream, wire_body

CLAUDE_CODE_VERSION = os.environ.get("CLIPROXY_CLAUDE_CODE_VERSION", "2.1.332")
INSTALL_DIR = Path(__file__).resolve().parents[2] / "build" / "claude-code"
CLIENT_KEY = "sk-client-claude-code-cli"
UNREACHABLE = re.compile(r"ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|network|getaddrinfo", re.I)
RUN_SECONDS = 120


def claude_binary() -> Path:
    """The installed CLI, installing it first when needed (skips when npm is unreachable)."""
    binary = INSTALL_DIR / "node_modules" / ".bin" / "claude"
    marker = INSTALL_DIR / f".installed-{CLAUDE_CODE_VERSION}"
    if binary.exists() and marker.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot install @anthropic-ai/claude-code")
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(INSTALL_DIR),
             f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip("npm install of @anthropic-ai/claude-code timed out (registry unreachable?)")
    if done.returncode != 0:
        if UNREACHABLE.search(done.stderr):
            pytest.skip(f"npm registry unreachable: {done.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"npm install failed:\n{done.stderr}")
    assert binary.exists(), "npm installed @anthropic-ai/claude-code without its `claude` binary"
    marker.touch()
    return binary


async def run_claude(binary: Path, base: str, model: str, home: Path) -> tuple[int, str, str]:
    """`claude -p` against the proxy, non-interactive and bounded."""
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": CLIENT_KEY,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CI": "true",
    }
    proc = await asyncio.create_subprocess_exec(
        str(binary), "-p", "say hi", "--model", model, "--max-turns", "1",
        cwd=str(home), env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"claude -p did not finish within {RUN_SECONDS} s") from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.fixture(scope="module")
def claude() -> Path:
    return claude_binary()


@pytest.mark.timeout(420)
@pytest.mark.parametrize("listing", ["cloaked", "real ids"])
async def test_claude_code_uses_a_gpt_model_through_the_model_list_cloak(
    listing: str, claude: Path, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """With the model-list cloak Claude Code asks for `claude-fable-5-dd-…`; with
    `claude-code.disable-cloaking-model-list` it asks for the real id, which needs no decoding."""
    fake = FakeUpstream(stream_body=wire_body("openai_responses_stream.txt"))  # text, though tools are offered
    up = await aiohttp_server(fake.app())
    base = str(up.make_url("")).rstrip("/")
    config = write_config(
        tmp_path,
        f"api-keys: [{CLIENT_KEY}]\ncodex-api-key:\n  - api-key: sk-codex\n    base-url: {base}/v1\n"
        "    models: [{name: gpt-fake}]\n"
        + ("claude-code:\n  disable-cloaking-model-list: true\n" if listing == "real ids" else ""),
    )
    proxy = await aiohttp_server(app_from_config(config))
    model = cloak("gpt-fake") if listing == "cloaked" else "gpt-fake"
    code, out, err = await run_claude(claude, str(proxy.make_url("")).rstrip("/"), model, tmp_path / "home")
    assert code == 0, f"claude -p failed ({code}):\n{out}\n{err}"
    assert "Hello from fake" in out
    generated = [s for s in fake.seen if s.path == "/v1/responses"]
    assert generated and all(s.json["model"] == "gpt-fake" for s in generated)


@pytest.mark.timeout(420)
async def test_a_cloaking_subscription_serves_claude_code_untouched(
    claude: Path, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeUpstream(stream_body=wire_body("anthropic_stream.txt"))  # text, though tools are offered
    up = await aiohttp_server(fake.app())
    monkeypatch.setenv("CLIPROXY_CLAUDE_API_URL", str(up.make_url("")).rstrip("/"))
    auths = tmp_path / "auths"
    auths.mkdir()
    later = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    file = auths / "claude-sub.json"
    file.write_text(
        json.dumps(
            {
                "type": "claude", "email": "s@x.com", "access_token": "at-subscription", "expired": later,
                "cloak_mode": "always",  # cloaking on: still, Claude Code's own requests are not cloaked
                "model_aliases": [{"name": "claude-fake-1", "alias": "fake-alias", "fork": True}],
            }
        )
    )  # fmt: skip
    os.chmod(file, 0o600)
    config = write_config(tmp_path, f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\n")
    proxy = await aiohttp_server(app_from_config(config))
    code, out, err = await run_claude(claude, str(proxy.make_url("")).rstrip("/"), "claude-fake-1", tmp_path / "home")
    assert code == 0, f"claude -p failed ({code}):\n{out}\n{err}"
    assert "Hello from fake" in out
    generated = [s for s in fake.seen if s.path == "/v1/messages" and s.json.get("messages")]
    assert generated
    for seen in generated:
        body = seen.json
        assert seen.header("Authorization") == "Bearer at-subscription"
        assert seen.header("x-app") == "cli" and str(seen.header("User-Agent")).startswith("claude-cli/")
        assert CLIENT_KEY not in json.dumps(seen.headers)
        assert body["system"][0]["text"].startswith("x-anthropic-billing-header: cc_version=")
        # Claude Code's own system prompt after its opening: the cloak would have left only the opening
        assert len(body["system"]) > 2 and "cc_entrypoint=sdk-cli;" in body["system"][0]["text"]
        user_id = json.loads(body["metadata"]["user_id"])
        assert user_id["session_id"] == seen.header("X-Claude-Code-Session-Id")
        assert "oauth-2025-04-20" in str(seen.header("anthropic-beta"))
