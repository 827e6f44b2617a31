"""Shared by every inbound handler: read the JSON body once, route the call, write the outcome.

The status line and headers are written only once routing returns, i.e. after the first upstream
payload or a final error, so an error before any data is a proper HTTP error in the client's
dialect and never a 200 stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error, routing_error_parts, routing_error_response
from cliproxy.api.keepalive import KeepAlive, hold_open
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.errors import RoutingError
from cliproxy.routing.relay import PassthroughStream
from cliproxy.server.access import CLIENT, REQUEST_ID
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect
from cliproxy.translate.errors import error_body

log = logging.getLogger(__name__)

SSE_RESPONSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive"}
JSON_STREAM_HEADERS = {"Content-Type": "application/json; charset=UTF-8", "Cache-Control": "no-cache"}
# Turns the client-dialect SSE bytes of a stream into another framing (Gemini's `alt=json` array).
Reframe = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]
_CONTENT_ENCODING = "Content-Encoding"


def _decode(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def call_of(
    request: web.Request,
    dialect: Dialect,
    model: str,
    body: dict[str, Any],
    raw: bytes,
    stream: bool,
    action: str = "generate",
) -> Call:
    """The `Call` for one parsed request: who asked (client, headers, path, id, peer) comes from it."""
    return Call(
        dialect,
        model,
        body,
        raw,
        stream,
        request[CLIENT],
        request.headers,
        request.path,
        action,
        request_id=request.get(REQUEST_ID, ""),
        client_ip=request.remote or "",
    )


async def read_json(request: web.Request, dialect: Dialect) -> tuple[bytes, dict[str, Any]] | web.Response:
    """The raw body and its parsed object, or the 400 to send back (in the client's dialect)."""
    try:
        raw = await request.read()
    except Exception as exc:  # body read failures (client gone, size limit) are the client's problem
        return dialect_error(dialect, 400, f"Invalid request: {exc}", err_type="invalid_request_error")
    try:
        body = jsonio.loads(raw)
    except ValueError:
        encoding = request.headers.get(_CONTENT_ENCODING)
        body = None
        if encoding and encoding.lower() != "identity":
            try:
                raw = _decode(raw, encoding)
                body = jsonio.loads(raw)
            except Exception as exc:
                return dialect_error(dialect, 400, f"Invalid request: could not decode body ({exc})")
        if body is None:
            return dialect_error(dialect, 400, "Invalid request: body is not valid JSON")
    if not isinstance(body, dict):
        return dialect_error(dialect, 400, "Invalid request: body must be a JSON object")
    return raw, body


def with_upstream_headers(own: Mapping[str, str], upstream: Mapping[str, str]) -> dict[str, str]:
    """`passthrough-headers`: the upstream's headers beside the proxy's own, never replacing one."""
    taken = {name.lower() for name in own}
    return {**own, **{name: value for name, value in upstream.items() if name.lower() not in taken}}


def whole_response(outcome: Outcome) -> web.Response:
    headers = {"Content-Type": outcome.content_type}
    if outcome.headers:
        headers.update(outcome.headers)
    if outcome.upstream_headers:
        headers = with_upstream_headers(headers, outcome.upstream_headers)
    return web.Response(body=outcome.body, status=outcome.status, headers=headers)


async def write_outcome(request: web.Request, outcome: Outcome) -> web.StreamResponse:
    """A whole body as one response; a stream as SSE chunks written as they arrive."""
    if outcome.events is None:
        return whole_response(outcome)
    return await stream_outcome(request, outcome)


async def stream_outcome(
    request: web.Request, outcome: Outcome, reframe: Reframe | None = None, *, keepalive_comments: bool = True
) -> web.StreamResponse:
    """Write a stream as SSE (or reframed); `streaming.keepalive-seconds` comments go into SSE only,
    and only when `keepalive_comments` (not for Gemini clients: see `run_call`)."""
    assert outcome.events is not None
    headers = SSE_RESPONSE_HEADERS if reframe is None else JSON_STREAM_HEADERS
    if outcome.upstream_headers:
        headers = with_upstream_headers(headers, outcome.upstream_headers)
    response = web.StreamResponse(status=outcome.status, headers=headers)
    every = 0.0
    if reframe is None and keepalive_comments:
        every = request.app[SERVICES].holder.current.config.streaming.keepalive_seconds
    keepalive = None
    try:
        await response.prepare(request)
        write: Callable[[bytes], Awaitable[None]] = response.write
        if every > 0:
            keepalive = KeepAlive(response, every)
            write = keepalive.write
        events = outcome.events if reframe is None else reframe(outcome.events)
        if type(events) is PassthroughStream:  # same dialect: chunks go straight to the socket
            await events.pump(write)
        else:
            async for chunk in events:
                await write(chunk)
        if keepalive is not None:  # before the end: no comment may follow it
            await keepalive.stop()
            keepalive = None
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        log.debug("client went away mid-stream")
    finally:
        if keepalive is not None:
            await keepalive.stop()
        await outcome.aclose()
    return response


async def run_call(request: web.Request, call: Call, reframe: Reframe | None = None) -> web.StreamResponse:
    """Dispatch one call with the snapshot current at arrival and write its answer (a stream as SSE,
    or reframed by `reframe`).

    A Gemini stream gets no keep-alive comments: google-genai parses every line that is not a
    `data:` line as JSON and raises on `: keep-alive`, and Google's JS SDK only ever matches frames
    that begin with `data: `, so any other bytes would stall it."""
    services = request.app[SERVICES]
    runtime = services.holder.current
    answer: Awaitable[Outcome] = services.dispatcher.execute(runtime, call)
    every = runtime.config.nonstream_keepalive_interval
    if every > 0 and not call.stream and call.action == "generate":
        answer = asyncio.ensure_future(answer)
        held = await hold_open(request, answer, every)
        if held is not None:
            return await _finish_held(held, answer, call.dialect)
    try:
        outcome = await answer
    except RoutingError as exc:
        return routing_error_response(call.dialect, exc)
    if outcome.events is None:
        return whole_response(outcome)
    return await stream_outcome(request, outcome, reframe, keepalive_comments=call.dialect is not Dialect.GEMINI)


async def _finish_held(
    response: web.StreamResponse, answer: asyncio.Future[Outcome], dialect: Dialect
) -> web.StreamResponse:
    """`nonstream-keepalive-interval` after its newlines have committed a 200: the answer
    follows them, and an error is its dialect's error object under that 200 (the price of the option)."""
    if not answer.done() or answer.cancelled():  # the client left; `hold_open` cancelled the answer
        return response
    try:
        body = answer.result().body or b""
    except RoutingError as exc:
        body = routing_error_parts(dialect, exc)[1]
    except Exception:
        log.exception("non-stream request failed after keep-alive newlines")
        body = error_body(dialect, 500, "internal error while waiting for the upstream")
    with contextlib.suppress(ConnectionError):
        await response.write(body)
        await response.write_eof()
    return response
