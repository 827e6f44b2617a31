"""An idle upstream connection is closed by the proxy once it has been idle for the pool's limit.

Many upstreams keep an idle keep-alive connection open for minutes; the proxy reuses one for
`IDLE_SECONDS` at most, and must not hold its socket (and descriptor) longer than that either. The
soak saw a descriptor per connection of its last busy moment stay open after the traffic stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from cliproxy.upstream import http1_pool
from tests.api.test_chat import compat
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import CHAT_COMPLETION

ANSWER = json.dumps(CHAT_COMPLETION).encode()


class KeepsEverythingOpen:
    """An upstream that answers and then never closes a connection itself; notes when we do."""

    def __init__(self) -> None:
        self.closed_by_proxy = asyncio.Event()
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
            )
            writer.write(ANSWER)
            await writer.drain()
            if not await reader.read(1):
                self.closed_by_proxy.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def keeps_open() -> AsyncIterator[tuple[KeepsEverythingOpen, str]]:
    upstream = KeepsEverythingOpen()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    yield upstream, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_idle_upstream_connection_is_closed_after_the_idle_limit(
    keeps_open: tuple[KeepsEverythingOpen, str], start_proxy: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1_pool, "IDLE_SECONDS", 0.3)
    upstream, base = keeps_open
    proxy = await start_proxy(compat(base))
    body = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            proxy.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["choices"][0]["message"]["content"] == "Hello from fake"
        await asyncio.wait_for(upstream.closed_by_proxy.wait(), 10)  # no request after it: the pool's own timer
    assert upstream.connections == 1
