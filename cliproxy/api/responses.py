"""Inbound OpenAI Responses over HTTP: `/v1/responses` and Codex's `/backend-api/codex/responses`."""

from __future__ import annotations

from aiohttp import web

from cliproxy.api.chat import model_of
from cliproxy.api.errors import dialect_error
from cliproxy.api.respond import call_of, read_json, run_call
from cliproxy.translate import Dialect

DIALECT = Dialect.RESPONSES


async def create_response(request: web.Request) -> web.StreamResponse:
    parsed = await read_json(request, DIALECT)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    model = model_of(body)
    if model is None:
        return dialect_error(DIALECT, 400, "model is required", code="model_not_found")
    call = call_of(request, DIALECT, model, body, raw, body.get("stream") is True)
    return await run_call(request, call)
