"""The passthrough routes: compact, alpha search, images, and Gemini's Interactions API.

Each is one upstream API that is not translated: the request goes to a credential that serves
the route (`Executor.actions`) as the client sent it, with only the model swapped, and the answer
comes back as the upstream sent it. Failover and cooldowns work as for any call. As CLIProxyAPI
does:
- `/v1/responses/compact` (also under `/backend-api/codex`) is non-stream only and drops `stream`;
- `/v1/alpha/search` drops `prompt_cache_key` and `prompt_cache_retention`, and its own errors
  are `{"error": "<text>"}` (an upstream's error passes as it came);
- `/v1/images/generations` takes JSON, `/v1/images/edits` a multipart form (its `model` field);
- `/v1beta/interactions` takes exactly one of `model` and `agent` (an agent is served by a
  credential of `gemini-2.5-flash`), `models/x` is `x`, and `stream` must be a boolean.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error
from cliproxy.api.respond import call_of, read_json, run_call, whole_response
from cliproxy.routing.errors import RoutingError, UpstreamFailed
from cliproxy.routing.raw_body import form_field
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect

AGENT_MODEL = "gemini-2.5-flash"  # whose credentials serve Interactions requests naming an agent
SEARCH_DROPPED = ("prompt_cache_key", "prompt_cache_retention")
MAX_FORM_BYTES = 64 * 1024 * 1024


def _model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) and model.strip() else None


async def compact(request: web.Request) -> web.StreamResponse:
    dialect = Dialect.RESPONSES
    parsed = await read_json(request, dialect)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    if body.get("stream") is True:
        return dialect_error(dialect, 400, "Streaming not supported for compact responses")
    if "stream" in body:
        del body["stream"]
        raw = jsonio.dumps(body)
    model = _model(body)
    if model is None:
        return dialect_error(dialect, 400, "model is required", code="model_not_found")
    return await run_call(request, call_of(request, dialect, model, body, raw, False, "compact"))


def _plain_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonio.dumps({"error": message}), status=status, headers=headers,
                        content_type="application/json")  # fmt: skip


async def alpha_search(request: web.Request) -> web.StreamResponse:
    try:
        raw = await request.read()
        body = jsonio.loads(raw)
    except Exception:
        return _plain_error(400, "invalid request body")
    if not isinstance(body, dict):
        return _plain_error(400, "invalid request body")
    if any(key in body for key in SEARCH_DROPPED):
        for key in SEARCH_DROPPED:
            body.pop(key, None)
        raw = jsonio.dumps(body)
    model = _model(body)
    if model is None:
        return _plain_error(400, "model is required")
    call = call_of(request, Dialect.RESPONSES, model, body, raw, False, "search")
    services = request.app[SERVICES]
    try:
        outcome = await services.dispatcher.execute(services.holder.current, call)
    except RoutingError as exc:
        if isinstance(exc, UpstreamFailed) and exc.body:
            return web.Response(body=exc.body, status=exc.status, headers=exc.headers, content_type="application/json")
        return _plain_error(exc.status, exc.message, dict(exc.headers))
    return whole_response(outcome)


async def images_generations(request: web.Request) -> web.StreamResponse:
    dialect = Dialect.CHAT
    parsed = await read_json(request, dialect)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    model = _model(body)
    if model is None:
        return dialect_error(dialect, 400, "model is required", code="model_not_found")
    call = call_of(request, dialect, model, body, raw, body.get("stream") is True, "images_generations")
    return await run_call(request, call)


async def images_edits(request: web.Request) -> web.StreamResponse:
    dialect = Dialect.CHAT
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return dialect_error(dialect, 400, "images/edits takes a multipart/form-data body")
    try:
        raw = await request.read()
    except Exception as exc:
        return dialect_error(dialect, 400, f"Invalid request: {exc}")
    model = form_field(raw, content_type, "model")
    if not model:
        return dialect_error(dialect, 400, "model is required", code="model_not_found")
    stream = (form_field(raw, content_type, "stream") or "").strip().lower() == "true"
    call = call_of(request, dialect, model, {"model": model}, raw, stream, "images_edits")
    return await run_call(request, call)


async def interactions(request: web.Request) -> web.StreamResponse:
    dialect = Dialect.GEMINI
    parsed = await read_json(request, dialect)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    model, agent = body.get("model"), body.get("agent")
    if (model is None) == (agent is None) or not isinstance(model if agent is None else agent, str):
        return dialect_error(
            dialect, 400, "exactly one of model or agent is required", err_type="invalid_request_error"
        )
    if "stream" in body and not isinstance(body["stream"], bool):
        return dialect_error(dialect, 400, "stream must be a boolean", err_type="invalid_request_error")
    if isinstance(model, str) and model.startswith("models/"):
        body["model"] = model = model[len("models/") :]
        raw = jsonio.dumps(body)
    routed = model if isinstance(model, str) else AGENT_MODEL
    call = call_of(request, dialect, routed, body, raw, body.get("stream") is True, "interactions")
    return await run_call(request, call)
