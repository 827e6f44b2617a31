"""The lean upstream HTTP/1.1 client against real sockets: scripted servers that control every byte.

Each scripted server is a plain `asyncio` server that records what it received and answers with the
exact bytes a test gives it, so framing (chunked with extensions and trailers, Content-Length, until
close), interim answers, keep-alive reuse and early closes are tested as they happen on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.upstream import http1, http1_pool
from cliproxy.upstream.http1_pool import Http1Pool
from cliproxy.upstream.http1_response import PAUSE_AT_BYTES
from tests.server.test_process import self_signed

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = {"Content-Type": "application/json", "Authorization": "Bearer sk-up"}


class Scripted:
    """An asyncio server running `script` per connection; counts connections, keeps raw requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions?x=1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up, or the test ended with this connection still open
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        raw = head + await reader.readexactly(length)
        self.requests.append(raw)
        return raw


@pytest.fixture
async def pool() -> AsyncIterator[Http1Pool]:
    pool = Http1Pool(timeouts=http1.Timeouts(connect=5))
    yield pool
    await pool.close()


async def fetch(pool: Http1Pool, url: str) -> bytes:
    """POST an empty object, read the whole answer, hand the connection back."""
    resp = await pool.post(url, data=b"{}", headers=JSON)
    body = await resp.read()
    resp.release()
    return body


def answer(body: bytes, *extra: str) -> bytes:
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + "".join(f"{h}\r\n" for h in extra)
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def test_request_bytes_and_content_length_answer_reuse_one_connection(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(answer(b'{"ok":true}', "X-Request-Id: r1"))

    async with Scripted(script) as server:
        port = server.url.split(":")[2].split("/")[0]
        for _ in range(3):
            resp = await pool.post(server.url, data=b'{"model":"m"}', headers=JSON)
            assert resp.status == 200
            assert resp.headers["x-request-id"] == "r1"
            assert await resp.read() == b'{"ok":true}'
            resp.release()
        assert server.connections == 1
    assert server.requests[0] == (
        b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer sk-up\r\nContent-Length: 13\r\n\r\n"
        b'{"model":"m"}'
    )


async def test_chunked_answer_split_byte_by_byte_with_extensions_and_trailers(pool: Http1Pool) -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
        b"7;name=value\r\ndata: 1\r\n"
        b"A\r\n\ndata: 22\n\r\n"
        b"0\r\nX-Trailer: t\r\n\r\n"
    )

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            for i in range(len(wire)):
                writer.write(wire[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)

    async with Scripted(script) as server:
        for _ in range(2):
            resp = await pool.post(server.url, data=b"{}", headers=JSON)
            assert resp.headers["content-type"] == "text/event-stream"
            assert await resp.read() == b"data: 1\ndata: 22\n"
            resp.release()
        assert server.connections == 1


async def test_stream_chunks_arrive_before_the_answer_ends(pool: Http1Pool) -> None:
    go_on = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
        await writer.drain()
        await go_on.wait()
        writer.write(b"5\r\nlast\n\r\n0\r\n\r\n")

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        assert await asyncio.wait_for(resp.content.readany(), 5) == b"first\n"
        go_on.set()
        assert [chunk async for chunk in resp.content.iter_any()] == [b"last\n"]
        resp.release()


async def test_body_until_close_is_read_whole_and_the_connection_not_reused(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()

    async with Scripted(script) as server:
        for _ in range(2):
            assert await fetch(pool, server.url) == b"all of it"
        assert server.connections == 2


async def test_interim_answer_is_skipped_and_204_has_no_body(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
        await server.read_request(reader)
        writer.write(answer(b"second"))

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        assert (resp.status, resp.headers["X-A"], await resp.read()) == (204, "1", b"")
        resp.release()
        assert await fetch(pool, server.url) == b"second"
        assert server.connections == 1


async def test_gzip_answer_is_decoded(pool: Http1Pool) -> None:
    body = gzip.compress(b'{"text":"' + b"x" * 5000 + b'"}')

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(body, "Content-Encoding: gzip"))

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        assert "Content-Encoding" not in resp.headers
        assert await resp.read() == b'{"text":"' + b"x" * 5000 + b'"}'
        resp.release()


async def test_idle_connection_closed_by_the_upstream_is_replaced(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"one"))  # keep-alive advertised, then closed while idle

    async with Scripted(script) as server:
        for expected in (b"one", b"one"):
            assert await fetch(pool, server.url) == expected
            await asyncio.sleep(0.05)
        assert server.connections == 2


async def test_reused_connection_that_drops_the_request_is_not_sent_again(pool: Http1Pool) -> None:
    """Once a request is written, a lost connection is that request's failure: the upstream may have
    started on it (a billed generation), so it is never re-sent behind the caller's back."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"one"))
        await writer.drain()
        await server.read_request(reader)  # the second request: read, then hang up unanswered

    async with Scripted(script) as server:
        assert await fetch(pool, server.url) == b"one"
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await fetch(pool, server.url)
        assert server.connections == 1
        assert len(server.requests) == 2  # each request received once


async def test_close_mid_body_is_a_client_error(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        with pytest.raises(aiohttp.ClientError):
            await resp.read()
        resp.close()


async def test_close_before_any_answer_on_a_new_connection_is_a_client_error(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)

    async with Scripted(script) as server:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await pool.post(server.url, data=b"{}", headers=JSON)


@pytest.mark.parametrize(
    "wire",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ],
)
async def test_garbage_from_the_upstream_is_a_client_error(pool: Http1Pool, wire: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(wire)
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(script) as server:
        with pytest.raises(aiohttp.ClientError):
            resp = await pool.post(server.url, data=b"{}", headers=JSON)
            await resp.read()


async def test_newline_in_a_header_value_is_refused_before_sending(pool: Http1Pool) -> None:
    with pytest.raises(ValueError, match="newline"):
        await pool.post("http://127.0.0.1:9/x", data=b"{}", headers={"X-Evil": "a\r\nHost: elsewhere"})


async def test_refused_connection_is_a_client_connection_error(pool: Http1Pool) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(aiohttp.ClientConnectionError):
        await pool.post(f"http://127.0.0.1:{port}/v1", data=b"{}", headers=JSON)


async def test_large_streamed_body_with_backpressure(pool: Http1Pool) -> None:
    """More than the pause threshold arrives while nobody reads; every byte still comes through."""
    size = PAUSE_AT_BYTES * 8

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(size // 65536):
            writer.write(b"10000\r\n" + b"z" * 65536 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        await asyncio.sleep(0.2)  # let the upstream fill our buffer and get paused
        total = 0
        async for chunk in resp.content.iter_any():
            total += len(chunk)
        assert total == size
        resp.release()


async def test_release_before_the_end_drops_the_connection(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()

    async with Scripted(script) as server:
        for _ in range(2):
            resp = await pool.post(server.url, data=b"{}", headers=JSON)
            assert await resp.content.readany() == b"abc"
            resp.release()
        assert server.connections == 2


async def test_https_upstream_is_verified_against_the_trusted_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"echo": (await request.json())["model"], "host": request.host})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    url = f"https://localhost:{server.port}/v1/chat/completions"
    try:
        untrusting = Http1Pool(timeouts=http1.Timeouts(connect=5))
        with pytest.raises(aiohttp.ClientConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            await untrusting.post(url, data=b'{"model":"m"}', headers=JSON)
        await untrusting.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusting = Http1Pool(timeouts=http1.Timeouts(connect=5))
        resp = await trusting.post(url, data=b'{"model":"m"}', headers=JSON)
        assert json.loads(await resp.read()) == {"echo": "m", "host": f"localhost:{server.port}"}
        resp.release()
        await trusting.close()
    finally:
        await server.close()


async def test_request_target_is_percent_encoded_once(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"{}"))

    async with Scripted(script) as server:
        base = server.url.split("/v1/")[0]
        resp = await pool.post(
            f"{base}/v1beta/models/my model é:generateContent?alt=sse&x=a%2Fb", data=b"{}", headers=JSON
        )
        await resp.read()
        resp.release()
    assert server.requests[0].startswith(
        b"POST /v1beta/models/my%20model%20%C3%A9:generateContent?alt=sse&x=a%2Fb HTTP/1.1\r\n"
    )


async def test_connection_idle_too_long_is_closed_not_reused(pool: Http1Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        if not await reader.read(1):  # we hang up on the stale connection rather than reuse it
            closed.set()

    async with Scripted(script) as server:
        monkeypatch.setattr(http1_pool, "IDLE_SECONDS", -1.0)
        for _ in range(2):
            assert await fetch(pool, server.url) == b"ok"
        await asyncio.wait_for(closed.wait(), 5)
        assert server.connections == 2


@pytest.mark.parametrize("seed", range(6))
async def test_chunked_answers_cut_at_random_places_arrive_whole(pool: Http1Pool, seed: int) -> None:
    """Many chunks (some with extensions), written in random slices: the body and the reuse survive."""
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.choice([1, 2, 15, 16, 17, 300, 5000])) for _ in range(40)]
    framed = b"".join(
        (f"{len(p):x};ext=1" if rng.random() < 0.2 else f"{len(p):X}").encode() + b"\r\n" + p + b"\r\n" for p in pieces
    )
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            pos = 0
            while pos < len(wire):
                step = rng.choice([1, 3, 7, 64, 1000, 9000])
                writer.write(wire[pos : pos + step])
                pos += step
                await writer.drain()
                await asyncio.sleep(0)

    async with Scripted(script) as server:
        for _ in range(2):
            assert await fetch(pool, server.url) == b"".join(pieces)
        assert server.connections == 1


async def test_bytes_sent_to_an_idle_connection_retire_it(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")  # an answer nobody asked for
        await writer.drain()
        while True:  # would go on serving on this connection, were it reused
            await server.read_request(reader)
            writer.write(answer(b"ok"))

    async with Scripted(script) as server:
        assert await fetch(pool, server.url) == b"ok"
        await asyncio.sleep(0.3)
        assert await fetch(pool, server.url) == b"ok"  # not the stray bytes: a new connection
        assert server.connections == 2


async def test_a_body_that_is_not_what_its_content_encoding_says_is_a_client_error(pool: Http1Pool) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"this is not gzip at all", "Content-Encoding: gzip"))
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(script) as server:
        resp = await pool.post(server.url, data=b"{}", headers=JSON)
        with pytest.raises(aiohttp.ClientPayloadError, match="could not be read"):
            await asyncio.wait_for(resp.read(), 5)
        resp.close()
