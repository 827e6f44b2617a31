"""`streaming.keepalive-seconds`: `: keep-alive` comments while an SSE stream is idle, never inside a frame."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cliproxy.api.keepalive import KEEPALIVE_FRAME, KeepAlive
from tests.api import test_gemini_passthrough as gemini
from tests.api.test_chat import compat
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream, events_of, wire_body

KEEPALIVE = "streaming:\n  keepalive-seconds: 1\n"
CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "stream": True}
CLAUDE = {"model": "gpt-fake", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}], "stream": True}


async def read_while_held(
    proxy: Proxy, fake: FakeUpstream, path: str, body: dict[str, object], seconds: float = 2.5
) -> tuple[bytes, bytes]:
    """(bytes read while the upstream holds the stream for `seconds`, the whole body once it lets go)."""
    fake.hold = True
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as http, http.post(proxy.url + path, json=body, headers=headers) as resp:
        assert resp.status == 200
        held = b""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while (left := until - loop.time()) > 0:
            try:
                chunk = await asyncio.wait_for(resp.content.readany(), left)
            except TimeoutError:
                break
            if not chunk:
                break
            held += chunk
        fake.resume.set()
        return held, held + await resp.read()


async def test_idle_chat_passthrough_gets_comments_between_frames(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(KEEPALIVE + compat(base))
    held, whole = await read_while_held(proxy, fake, "/v1/chat/completions", CHAT)
    recorded = wire_body("openai_chat_stream.txt")
    first = events_of(recorded)[0]
    pings = held.count(KEEPALIVE_FRAME)
    assert pings in (2, 3)  # at about 1 s and 2 s (a third when the machine is slow to start the read)
    assert held == first + KEEPALIVE_FRAME * pings
    assert whole.replace(KEEPALIVE_FRAME, b"") == recorded  # otherwise byte for byte


async def test_translated_stream_gets_comments_too(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(KEEPALIVE + compat(base))
    held, whole = await read_while_held(proxy, fake, "/v1/messages", CLAUDE, 1.5)
    assert held.startswith(b"event: message_start") and held.endswith(KEEPALIVE_FRAME)
    assert whole.rstrip().endswith(b'data: {"type":"message_stop"}')


@pytest.mark.parametrize("extra", ["", "streaming:\n  keepalive-seconds: 0\n"])
async def test_off_by_default(extra: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(extra + compat(base))
    held, whole = await read_while_held(proxy, fake, "/v1/chat/completions", CHAT, 1.5)
    recorded = wire_body("openai_chat_stream.txt")
    assert (held, whole) == (events_of(recorded)[0], recorded)


async def test_never_inside_a_frame_split_across_writes(aiohttp_server: Any) -> None:
    """A frame the upstream split across reads is never interrupted, however long the gap."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        keepalive = KeepAlive(response, 0.2)
        await keepalive.write(b'data: {"a"')
        await asyncio.sleep(0.7)
        await keepalive.write(b":1}\n\n")
        await asyncio.sleep(0.5)
        await keepalive.stop()
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http, http.get(f"http://{server.host}:{server.port}/") as resp:
        body = await resp.read()
    pings = body.count(KEEPALIVE_FRAME)
    assert pings >= 1 and body == b'data: {"a":1}\n\n' + KEEPALIVE_FRAME * pings


async def test_gemini_streams_get_none_since_google_sdks_cannot_skip_them(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """google-genai parses a Gemini stream's non-`data:` lines as JSON (`: keep-alive` raises), and
    Google's JS SDK stalls on any bytes that do not begin a `data: ` frame."""
    fake, base = upstream
    proxy = await start_proxy("streaming:\n  keepalive-seconds: 0.2\n" + gemini.gemini_keys(base))
    fake.hold = True
    stream = await gemini.client(proxy).aio.models.generate_content_stream(model="gemini-fake", contents="hi")
    texts = []
    async for chunk in stream:
        texts.append(chunk.text or "")
        if len(texts) == 1:  # the upstream holds the stream for a while after its first event
            asyncio.get_running_loop().call_later(1.0, fake.resume.set)
    assert "".join(texts) == "Hello from fake"
    fake.resume.clear()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}  # one the fake accepts, as Google would
    held, _ = await read_while_held(proxy, fake, "/v1beta/models/gemini-fake:streamGenerateContent?alt=sse", body, 1.0)
    assert KEEPALIVE_FRAME not in held and held.startswith(b"data: ")
