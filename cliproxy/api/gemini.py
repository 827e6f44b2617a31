"""Inbound Gemini `models/{model}:{method}` under `/v1beta` and `/v1` (google-genai 3.x defaults to `/v1`).

The model may contain `/` (a prefix); the method is everything after the last `:`. The body carries
no model, so passthrough forwards it untouched and the upstream model goes into the URL.
"""

from __future__ import annotations

from aiohttp import web

from cliproxy.api.respond import call_of, read_json, run_call
from cliproxy.server.access import dialect_error
from cliproxy.translate import Dialect

DIALECT = Dialect.GEMINI
METHODS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "countTokens": ("count_tokens", False),
}


async def model_method(request: web.Request) -> web.StreamResponse:
    target = request.match_info["target"]
    model, sep, method = target.rpartition(":")
    if not sep or not model:
        return web.json_response(
            {"error": {"message": f"{request.path} not found.", "type": "invalid_request_error"}}, status=404
        )
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
    return await run_call(request, call)
