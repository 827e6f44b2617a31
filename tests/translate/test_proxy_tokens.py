"""count_tokens / countTokens through the running proxy, and litellm kept off the server's path.

Where the chosen upstream cannot count in the client's dialect, the proxy estimates locally with
litellm's token counter (imported lazily, offline); where it can (same dialect), the upstream counts.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anthropic
from google import genai
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.test_proxy_matrix import MODEL, upstream_config

ROOT = Path(__file__).resolve().parents[2]
LONG = "the quick brown fox jumps over the lazy dog " * 40


async def test_claude_count_tokens_estimated_for_other_upstreams(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CHAT, base))
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    short = await ac.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    long = await ac.messages.count_tokens(model=MODEL, system="be brief", messages=[{"role": "user", "content": LONG}])
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens > 300  # 360 words: an estimate, not the length of the JSON body / 4 by chance
    assert fake.seen == []  # the chat upstream has no counting endpoint: nothing was sent


async def test_gemini_count_tokens_counted_by_a_claude_upstream(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """A Claude upstream counts for a Gemini client: its own count_tokens answers (the fake counts 7),
    with the body cut to what that endpoint takes (the fake refuses `max_tokens` as Anthropic does)."""
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    gc = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    counted = await gc.aio.models.count_tokens(model=MODEL, contents=LONG)
    assert counted.total_tokens == 7
    (seen,) = fake.seen
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.json["messages"][0]["content"][0]["text"] == LONG and "max_tokens" not in seen.json


async def test_claude_count_tokens_counted_by_a_gemini_upstream(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """A Gemini upstream counts for a Claude client through `:countTokens`, system prompt included."""
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.GEMINI, base))
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    messages: list[Any] = [{"role": "user", "content": LONG}]
    counted = await ac.messages.count_tokens(model=MODEL, system="be brief", messages=messages)
    assert counted.input_tokens == 7
    (seen,) = fake.seen
    assert seen.path.endswith(":countTokens")
    inner = seen.json["generateContentRequest"]
    assert inner["model"].startswith("models/") and inner["contents"][0]["parts"][0]["text"] == LONG
    assert inner["systemInstruction"]["parts"][0]["text"] == "be brief"


async def test_same_dialect_count_tokens_asks_the_upstream(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CLAUDE, base))
    ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    counted = await ac.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": LONG}])
    assert counted.input_tokens == 7  # the fake upstream's own count
    assert [s.path for s in fake.seen] == ["/v1/messages/count_tokens"]


SERVE_WITHOUT_LITELLM = """
import asyncio, sys
from pathlib import Path
import tempfile

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from cliproxy.runtime import RuntimeHolder
from cliproxy.server.app import build_app
from cliproxy.watch import load_runtime
from tests.fakes.upstreams import FakeUpstream


async def main() -> None:
    fake = FakeUpstream()
    up = TestServer(fake.app())
    await up.start_server()
    base = f"http://{up.host}:{up.port}"
    with tempfile.TemporaryDirectory() as home:
        config = Path(home) / "config.yaml"
        config.write_text(
            f"api-keys: [sk-client]\\nauth-dir: {home}/auths\\n"
            f"claude-api-key:\\n  - api-key: sk-ant-up\\n    base-url: {base}\\n    models: [{{name: m}}]\\n"
        )
        app = build_app(RuntimeHolder(load_runtime(config)))
        server = TestServer(app)
        await server.start_server()
        url = f"http://{server.host}:{server.port}"
        headers = {"Authorization": "Bearer sk-client"}
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with ClientSession() as http:
            async with http.post(url + "/v1/chat/completions", json=chat, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["choices"][0]["message"]["content"] == "Hello from fake"
            async with http.post(url + "/v1/chat/completions", json={**chat, "stream": True}, headers=headers) as resp:
                assert resp.status == 200 and (await resp.read()).endswith(b"data: [DONE]\\n\\n")
        await server.close()
    await up.close()
    print("litellm" in sys.modules, [name for name in sys.modules if name.startswith("litellm")][:3])


asyncio.run(main())
"""


def test_serving_translated_requests_never_imports_litellm(tmp_path: Path) -> None:
    """Start the app and serve a translated request (whole and streamed) in a fresh interpreter."""
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(SERVE_WITHOUT_LITELLM))
    env = {"HOME": str(tmp_path), "WRITABLE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False []"
