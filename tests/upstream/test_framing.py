"""Strict upstream framing: malformed HTTP answers fail the attempt with 502, never reach the client as
an answer, and their connection is never reused; a differential run pins where the direct client
(llhttp through httptools, strict) and aiohttp's client (llhttp with its lenient flags, used through
outbound proxies) agree and where ours is deliberately stricter."""

from __future__ import annotations

import asyncio
import gzip
import resource
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.upstream import http1
from cliproxy.upstream.http1_pool import Http1Pool
from tests.fakes.dialects import ask, provider
from tests.fakes.fixtures import Starter
from tests.fakes.raw import RawRequest, RawUpstream, good_answer

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
# name -> (answer bytes, aiohttp's client accepts it)
CORPUS: dict[str, tuple[bytes, bool]] = {
    "hex chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",
        False,
    ),
    "signed chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n", False),
    "two content lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", False),
    "length and chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        False,
    ),
    "four-digit status": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "negative length": (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", False),
    "nul in a header": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}", False),
    "chunk without its CRLF": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", False),
    "not http at all": (b"SMTP ready\r\n\r\n", False),
    # aiohttp's client is lenient here; ours refuses, since each is how request smuggling starts
    "space before a header name": (b"HTTP/1.1 200 OK\r\n Content-Length: 2\r\n\r\n{}", True),
    "space before the colon": (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}", True),
    "folded header": (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\n{}", True),
    "bare LF line ends": (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", True),
    "gzip transfer coding": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}", True),
    "HTTP/2.0 status line": (b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", True),
}
# Well-formed answers both must read alike.
GOOD: dict[str, bytes] = {
    "length": OK,
    "chunked with an extension and trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=1\r\n{\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n"
    ),
    "same length twice": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
    "no reason phrase": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}",
    "until close, HTTP/1.0": b"HTTP/1.0 200 OK\r\n\r\n{}",
}
STRICTER = {name for name, (_, aiohttp_accepts) in CORPUS.items() if aiohttp_accepts}


async def serve_once(answer: bytes) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(x.split(b":")[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length")), 0
            )
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"


async def ours_accept(answer: bytes) -> bool:
    server, url = await serve_once(answer)
    pool = Http1Pool(timeouts=http1.Timeouts(connect=5, first_byte=5, idle=5))
    try:
        resp = await pool.post(url, data=b"{}", headers={"Content-Type": "application/json"})
        await resp.read()
        resp.release()
        return True
    except aiohttp.ClientError:
        return False
    finally:
        await pool.close()
        server.close()


async def aiohttp_accepts(answer: bytes) -> bool:
    server, url = await serve_once(answer)
    try:
        async with aiohttp.ClientSession() as http, http.post(url, data=b"{}") as resp:
            await resp.read()
            return True
    except aiohttp.ClientError:
        return False
    finally:
        server.close()


@pytest.mark.parametrize("name", list(CORPUS))
async def test_the_direct_client_refuses_every_malformed_answer(name: str) -> None:
    assert not await ours_accept(CORPUS[name][0])


@pytest.mark.parametrize("name", list(CORPUS) + list(GOOD))
async def test_differential_against_aiohttps_client(name: str) -> None:
    """Both refuse the same malformed answers, except the listed ones where ours is stricter; both read
    the well-formed ones."""
    answer = CORPUS[name][0] if name in CORPUS else GOOD[name]
    ours, theirs = await ours_accept(answer), await aiohttp_accepts(answer)
    if name in GOOD:
        assert ours and theirs
    elif name in STRICTER:
        assert (ours, theirs) == (False, True)
    else:
        assert (ours, theirs) == (False, False)


@pytest.fixture
async def raw() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(good_answer)
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_a_malformed_answer_is_a_502_and_its_connection_is_dropped(
    name: str, raw: RawUpstream, start_proxy: Starter
) -> None:
    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if raw.requests[0] is request:
            writer.write(CORPUS[name][0])
            await writer.drain()
            await request.hold(5)  # leave the connection open: the proxy must be the one to drop it
            return
        await good_answer(request, writer)

    raw.script = script
    proxy = await start_proxy("transient-error-cooldown-seconds: -1\n" + provider("chat", raw.base))
    outcome = await ask(proxy, "chat")
    assert outcome.status == 502, outcome
    assert (await ask(proxy, "chat")).text  # the next request is served normally...
    assert raw.connections == 2  # ...on a new connection: the broken one was never reused


async def test_a_gzip_bomb_is_a_502_and_the_process_does_not_grow(raw: RawUpstream, start_proxy: Starter) -> None:
    bomb = gzip.compress(b"{" + b" " * (1 << 30) + b"}", compresslevel=9)  # 1 GiB inflated, ~1 MiB sent
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb)
    )

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    raw.script = script
    proxy = await start_proxy(provider("chat", raw.base))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the peak so far
    outcome = await ask(proxy, "chat")
    assert outcome.status == 502 and "inflates past" in outcome.error, outcome
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 200 * 1024  # KiB: the inflated gigabyte never existed


async def test_a_request_lost_with_its_connection_reaches_the_upstream_once(
    raw: RawUpstream, start_proxy: Starter
) -> None:
    """An upstream that answered once, then drops the connection on the next request: that request was
    received once (a counted attempt), not re-sent behind the retry rules."""

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if len(raw.requests) == 1:
            await good_answer(request, writer)
            return
        writer.transport.abort()  # read the request, then drop the connection without a word

    raw.script = script
    proxy = await start_proxy("request-retry: 0\n" + provider("chat", raw.base))
    assert (await ask(proxy, "chat")).text
    assert (await ask(proxy, "chat")).status == 502
    assert len(raw.requests) == 2


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(answer=st.one_of(st.binary(max_size=400), st.builds(lambda tail: OK[:30] + tail, st.binary(max_size=300))))
async def test_random_answer_bytes_never_make_a_500_or_a_hang(answer: bytes) -> None:
    """Whatever bytes an upstream sends, the direct client ends with an answer or a client error
    within its bounds; it never raises anything else and never hangs."""
    server, url = await serve_once(answer)
    pool = Http1Pool(timeouts=http1.Timeouts(connect=2, first_byte=1, idle=1))
    try:
        async with asyncio.timeout(10):
            try:
                resp = await pool.post(url, data=b"{}", headers={"Content-Type": "application/json"})
                await resp.read()
                resp.release()
            except aiohttp.ClientError:
                pass
    finally:
        await pool.close()
        server.close()
