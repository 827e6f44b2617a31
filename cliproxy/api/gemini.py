"""Inbound Gemini `models/{model}:{method}` under `/v1beta` and `/v1` (google-genai 3.x defaults to `/v1`).

The model may contain `/` (a prefix); the method is everything after the last `:`. The body carries
no model, so passthrough forwards it untouched and the upstream model goes into the URL.

`streamGenerateContent` answers as SSE with `alt=sse` or no `alt`, as CLIProxyAPI does. Any other `alt`
(`alt=json`, also spelt `$alt`) gets Google's REST framing: one JSON array whose elements (the
response chunks) are written as they arrive. The upstream is always asked for SSE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cliproxy.api.errors import dialect_error
from cliproxy.api.respond import call_of, read_json, run_call
from cliproxy.translate import Dialect
from cliproxy.translate.sse import SSEParser

DIALECT = Dialect.GEMINI
METHODS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "countTokens": ("count_tokens", False),
}


async def model_method(request: web.Request) -> web.StreamResponse:
    target = request.match_info["target"]
    model, sep, method = target.rpartition(":")
    if not sep:
        return dialect_error(DIALECT, 404, f"{request.path} not found.")
    if not model or model == "models/":
        return dialect_error(DIALECT, 400, f"a model name is required before ':{method}'")
    if method not in METHODS:
        return dialect_error(DIALECT, 404, f"method {method!r} is not supported for models/{model}")
    action, stream = METHODS[method]
    if model.startswith("models/"):
        model = model[len("models/") :]
    parsed = await read_json(request, DIALECT)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    call = call_of(request, DIALECT, model, body, raw, stream, action)
    return await run_call(request, call, json_array if stream and wants_json_array(request) else None)


def wants_json_array(request: web.Request) -> bool:
    alt = request.query.get("alt") or request.query.get("$alt") or "sse"
    return alt.lower() != "sse"


async def json_array(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Gemini SSE frames as the JSON array `alt=json` asks for: `[`, the chunks joined by `,` CRLF, `]`."""
    opener = b"["
    async for data in sse_payloads(events):
        if data:
            yield opener + data
            opener = b",\r\n"
    yield b"[]" if opener == b"[" else b"]"


async def sse_payloads(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The `data` of every SSE event in `events`, however the bytes were split."""
    parser = SSEParser()
    async for chunk in events:
        for event in parser.feed(chunk):
            yield event.data
    for event in parser.flush():
        yield event.data
