"""A refused upstream answer leaves nothing behind: a gzip bomb gets 502 and its inflated bytes go at once.

The served proxy calms the cyclic garbage collector (`calm_gc`), so memory that only a reference
cycle holds stays until a rare full pass. An error that kept its traceback (and with it the frame
holding the inflated bytes), or a failed body that kept its buffered chunks while the raise tied it
into a traceback cycle, held each bomb's 64 MiB: the soak saw the process grow by that much per
bomb. Here the collector is off and the test counts what is still allocated after each refusal.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from cliproxy.upstream.http1 import MAX_INFLATED_BYTES
from tests.api.test_chat import compat
from tests.fakes.fixtures import CLIENT_KEY, Starter

MIB = 1024 * 1024
BODY = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


def gzip_bomb() -> bytes:
    """Zeros that inflate 16 MiB past the cap, gzipped (about 80 KB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MIB)
    parts = [comp.compress(block) for _ in range(MAX_INFLATED_BYTES // MIB + 16)]
    return b"".join([*parts, comp.flush()])


@pytest.fixture
async def bomb_upstream(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An upstream answering every request with a gzip bomb, in one write or dripped in 8 KB pieces
    (then the proxy inflates it in steps and buffers what it inflated before the cap)."""
    bomb = gzip_bomb()
    drip: bool = request.param

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(bomb)
            )
            for at in range(0, len(bomb), 8192 if drip else len(bomb)):
                writer.write(bomb[at : at + (8192 if drip else len(bomb))])
                await writer.drain()
                if drip:
                    await asyncio.sleep(0.001)
            await reader.read()  # until the proxy hangs up
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


@pytest.mark.parametrize("bomb_upstream", [False, True], ids=["one-write", "dripped"], indirect=True)
async def test_gzip_bomb_is_refused_and_its_inflated_bytes_freed(bomb_upstream: str, start_proxy: Starter) -> None:
    proxy = await start_proxy("transient-error-cooldown-seconds: -1\n" + compat(bomb_upstream))
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with aiohttp.ClientSession() as http:
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(3):
                async with http.post(proxy.url + "/v1/chat/completions", json=BODY, headers=headers) as resp:
                    assert resp.status == 502
                    assert "upstream body failed" in (await resp.json())["error"]["message"]
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            gc.enable()
    assert held < 8 * MIB, f"{held / MIB:.0f} MiB still allocated after three refused bombs"
