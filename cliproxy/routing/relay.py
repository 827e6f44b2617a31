"""Relaying an upstream stream once its first payload is known: passthrough, translated, or collected.

`read_first` reads ahead to the first SSE payload, so an error event the upstream sends before any
content can still fail over. After that the stream is committed: the answer goes out as it arrives,
and a broken upstream ends it with the client dialect's in-band error frame. Every path releases the
upstream connection and writes the usage record exactly once (at the end of the stream, or when the
client went away, as 499).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp

from cliproxy import jsonio
from cliproxy.routing.failures import Failure, network_failure, status_of_stream_error
from cliproxy.routing.recorder import StreamUsageScanner, UsageRecorder
from cliproxy.translate import Dialect, convert
from cliproxy.translate.errors import stream_error_frame
from cliproxy.translate.sse import DONE_FRAME, SSEEvent, SSEParser
from cliproxy.translate.usage import usage_of_event
from cliproxy.upstream.clients import UpstreamResponse

NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
MAX_FIRST_EVENT_BYTES = 1 << 20  # read ahead this far at most for the first event (a bound on the buffer)


def early_error(buf: bytes) -> tuple[int, bytes, str] | None:
    """An error event as the very first payload of a stream (still safe to fail over)."""
    head = buf.lstrip()
    if head.startswith(b"event: error") or head.startswith(b"event:error"):
        start = head.find(b"data:")
        end = head.find(b"\n", start)
        data = head[start + 5 : end if end > 0 else None].strip()
        return status_of_stream_error(Dialect.CLAUDE, data)
    if head.startswith(b'data: {"error"') or head.startswith(b'data:{"error"'):
        end = head.find(b"\n")
        return status_of_stream_error(Dialect.CHAT, head[5 : end if end > 0 else None].strip())
    return None


async def read_first(resp: UpstreamResponse, client: Dialect, upstream: Dialect, deadline: float) -> bytes | Failure:
    """Read ahead to the first chunk with an SSE payload, by `deadline` (the loop's clock); an early
    error event is a failure, and so is a stream that sends nothing but comments until then."""
    buf = b""
    read = resp.content.readany
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                chunk = await read()
                if not chunk:
                    if b"data:" not in buf:
                        return Failure(502, b"", client, message="upstream closed the stream before any data")
                    break
                if len(buf) + len(chunk) > MAX_FIRST_EVENT_BYTES:
                    return Failure(502, b"", client, message="upstream stream sent no event in its first bytes")
                buf += chunk
                start = buf.find(b"data:")
                if start >= 0 and buf.find(b"\n", start) >= 0:
                    break
    except TimeoutError:
        return Failure(504, b"", client, message="upstream stream sent no event in time")
    except NETWORK_ERRORS as exc:
        return network_failure(client, "upstream stream failed", exc)
    early = early_error(buf)
    if early is not None:
        status, body, message = early
        return Failure(status, body, upstream, message=message)
    return buf


def broken_status(exc: BaseException) -> int:
    """504 for a stream whose upstream went silent past `idle-seconds`, 502 for any other break."""
    return 504 if isinstance(exc, TimeoutError) else 502


def broken_frame(client: Dialect, exc: BaseException) -> bytes:
    """The in-band error frame that ends a stream whose upstream broke off."""
    status = broken_status(exc)
    what = "went silent" if status == 504 else "broke"
    return stream_error_frame(client, status, f"upstream stream {what}: {exc or type(exc).__name__}")


class PassthroughStream:
    """Passthrough: upstream bytes as they arrive, usage scanned on the side.

    `pump(write)` hands every chunk straight to the client's writer, with no generator between the
    two sockets (the hot path of a same-dialect stream). Iterating the object yields the same bytes
    for wrappers that reshape them. Either way the upstream is released and the usage record
    written exactly once: at the end of the stream, or by `aclose()` when the client went away.
    """

    __slots__ = ("_chunks", "client", "complete", "finished", "first", "rec", "resp", "scanner")

    def __init__(self, resp: UpstreamResponse, first: bytes, client: Dialect, rec: UsageRecorder) -> None:
        self.resp = resp
        self.first = first
        self.client = client
        self.rec = rec
        self.scanner = StreamUsageScanner(client, rec)
        self.complete = False  # the upstream body was read to its end (the connection can be reused)
        self.finished = False
        self._chunks: AsyncGenerator[bytes, None] | None = None

    def _needs_done(self, last: bytes) -> bool:
        """Chat streams end with `data: [DONE]`; add it when the upstream left it out."""
        return self.client is Dialect.CHAT and not last.rstrip().endswith(b"[DONE]") and b'"error"' not in last

    def _broken(self, exc: BaseException) -> bytes:
        return broken_frame(self.client, exc)

    def _finish(self, status: int) -> None:
        if self.finished:
            return
        self.finished = True
        if self.complete:
            self.resp.release()
        else:
            self.resp.close()
        self.scanner.finish()
        self.rec.done(status)

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the whole stream with `write`; a failed write (client gone) or a cancel counts as 499."""
        scanner = self.scanner
        reader = self.resp.content
        status = 499
        try:
            last = self.first
            scanner.feed(last)
            await write(last)
            while True:
                try:
                    chunk = await reader.readany()
                except NETWORK_ERRORS as exc:  # only upstream reads here: client write errors are not caught
                    await write(self._broken(exc))
                    status = broken_status(exc)
                    return
                if not chunk:
                    break
                scanner.feed(chunk)
                last = chunk
                await write(chunk)
            self.complete = True
            if self._needs_done(last):
                await write(DONE_FRAME)
            status = 200
        finally:
            self._finish(status)

    def __aiter__(self) -> PassthroughStream:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            self._chunks = self._iterate()
        return await self._chunks.__anext__()

    async def _iterate(self) -> AsyncGenerator[bytes, None]:
        status = 200
        last = self.first
        try:
            self.scanner.feed(last)
            yield last
            async for chunk in self.resp.content.iter_any():
                self.scanner.feed(chunk)
                last = chunk
                yield chunk
            self.complete = True
            if self._needs_done(last):
                yield DONE_FRAME
        except NETWORK_ERRORS as exc:
            status = broken_status(exc)
            yield self._broken(exc)
        except (asyncio.CancelledError, GeneratorExit):
            status = 499
            raise
        finally:
            self._finish(status)

    async def aclose(self) -> None:
        """Release the upstream and record usage if the stream was not read to its end (client gone)."""
        if self._chunks is not None:
            await self._chunks.aclose()
        self._finish(499)


async def translated_stream(
    resp: UpstreamResponse,
    first: bytes,
    upstream: Dialect,
    translator: convert.StreamTranslator,
    rec: UsageRecorder,
) -> AsyncGenerator[bytes, None]:
    """Cross-dialect: parse upstream events, translate each, frame for the client."""
    parser = SSEParser()
    status = 200
    complete = False

    def convert_events(events: list[SSEEvent]) -> bytes:
        out = []
        for ev in events:
            if b"usage" in ev.data:
                try:
                    rec.add_tokens(usage_of_event(upstream, jsonio.loads(ev.data)))
                except ValueError:
                    pass
            piece = translator.feed(ev)
            if piece:
                out.append(piece)
        return b"".join(out)

    try:
        data = convert_events(parser.feed(first))
        if data:
            yield data
        async for chunk in resp.content.iter_any():
            data = convert_events(parser.feed(chunk))
            if data:
                yield data
        data = convert_events(parser.flush()) + translator.finish()
        complete = True
        if data:
            yield data
    except NETWORK_ERRORS as exc:
        status = broken_status(exc)
        what = "went silent" if status == 504 else "broke"
        yield translator.error(status, f"upstream stream {what}: {exc or type(exc).__name__}")
    except (asyncio.CancelledError, GeneratorExit):
        status = 499
        raise
    finally:
        if complete:
            resp.release()
        else:
            resp.close()
        rec.done(status)


async def collect_stream(
    resp: UpstreamResponse, first: bytes, client: Dialect, upstream: Dialect, model: str, rec: UsageRecorder
) -> dict[str, Any] | Failure:
    """An always-streaming upstream answering a non-stream client: the whole answer, in the upstream's dialect."""
    aggregator = convert.StreamAggregator(upstream, model=model)
    parser = SSEParser()
    scanner = StreamUsageScanner(upstream, rec)
    try:
        for ev in parser.feed(first):
            aggregator.feed(ev)
        scanner.feed(first)
        async for chunk in resp.content.iter_any():
            scanner.feed(chunk)
            for ev in parser.feed(chunk):
                aggregator.feed(ev)
        for ev in parser.flush():
            aggregator.feed(ev)
    except NETWORK_ERRORS as exc:
        resp.close()
        return network_failure(client, "upstream stream failed", exc)
    finally:
        resp.release()
    scanner.finish()
    return aggregator.result()
