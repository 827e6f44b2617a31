"""Inbound Anthropic Messages: `/v1/messages` (any `?beta=true`, any `anthropic-version`) and count_tokens."""

from __future__ import annotations

from aiohttp import web

from cliproxy.api.chat import model_of
from cliproxy.api.errors import dialect_error
from cliproxy.api.respond import call_of, read_json, run_call
from cliproxy.routing.catalog import CLOAK_PREFIX, uncloak
from cliproxy.routing.request_body import replace_model
from cliproxy.translate import Dialect

DIALECT = Dialect.CLAUDE


async def _handle(request: web.Request, action: str) -> web.StreamResponse:
    parsed = await read_json(request, DIALECT)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    model = model_of(body)
    if model is None:
        return dialect_error(DIALECT, 400, "model: field required")
    if model.startswith(CLOAK_PREFIX):  # ids we cloaked in the Anthropic listing
        real = uncloak(model)
        raw = replace_model(raw, body, model, real)
        body = {**body, "model": real}
        model = real
    stream = action == "generate" and body.get("stream") is True
    call = call_of(request, DIALECT, model, body, raw, stream, action)
    return await run_call(request, call)


async def messages(request: web.Request) -> web.StreamResponse:
    return await _handle(request, "generate")


async def count_tokens(request: web.Request) -> web.StreamResponse:
    return await _handle(request, "count_tokens")
