"""Inbound OpenAI Chat Completions (`/v1/chat/completions`) and legacy Completions (`/v1/completions`)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.api.errors import dialect_error, routing_error_response
from cliproxy.api.respond import call_of, read_json, stream_outcome, whole_response, write_outcome
from cliproxy.routing.errors import RoutingError
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect, convert
from cliproxy.translate.sse import DONE_FRAME, SSEParser

DIALECT = Dialect.CHAT
_LEGACY_DROP = frozenset({"prompt", "echo", "logprobs", "best_of", "suffix"})


def model_of(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) and model else None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    parsed = await read_json(request, DIALECT)
    if isinstance(parsed, web.Response):
        return parsed
    raw, body = parsed
    if "messages" not in body and ("input" in body or "instructions" in body):
        # A Responses payload on the chat route (CLIProxyAPI accepts it too): converted to chat first.
        try:
            body = convert.translate_request(
                body, Dialect.RESPONSES, DIALECT, model=str(body.get("model", "")), stream=body.get("stream") is True
            )
        except convert.TranslationError as exc:
            return dialect_error(DIALECT, 400, str(exc))
        raw = jsonio.dumps(body)
    model = model_of(body)
    if model is None:
        return dialect_error(DIALECT, 400, "model is required", code="model_not_found")
    call = call_of(request, DIALECT, model, body, raw, body.get("stream") is True)
    services = request.app[SERVICES]  # run_call inlined: one coroutine frame less on the hottest route
    try:
        outcome = await services.dispatcher.execute(services.holder.current, call)
    except RoutingError as exc:
        return routing_error_response(DIALECT, exc)
    if outcome.events is None:
        return whole_response(outcome)
    return await stream_outcome(request, outcome)


def legacy_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """`prompt` → one user message; the sampling parameters carry over."""
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = "\n".join(p for p in prompt if isinstance(p, str))
    chat = {k: v for k, v in body.items() if k not in _LEGACY_DROP}
    chat["messages"] = [{"role": "user", "content": str(prompt)}]
    return chat


def chat_to_text(obj: dict[str, Any], *, chunk: bool) -> dict[str, Any]:
    """A chat completion (or chunk) as a `text_completion` object."""
    choices = []
    for choice in obj.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        part = choice.get("delta" if chunk else "message") or {}
        choices.append(
            {
                "text": part.get("content") or "" if isinstance(part, dict) else "",
                "index": choice.get("index", 0),
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
        )
    out: dict[str, Any] = {
        "id": obj.get("id", ""),
        "object": "text_completion",
        "created": obj.get("created", int(time.time())),
        "model": obj.get("model", ""),
        "choices": choices,
    }
    if obj.get("usage"):
        out["usage"] = obj["usage"]
    return out


async def _text_stream(events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    parser = SSEParser()
    async for chunk in events:
        out = []
        for ev in parser.feed(chunk):
            if ev.data == b"[DONE]":
                out.append(DONE_FRAME)
                continue
            try:
                obj = jsonio.loads(ev.data)
            except ValueError:
                continue
            if isinstance(obj, dict) and "error" in obj:
                out.append(b"data: " + ev.data + b"\n\n")
            elif isinstance(obj, dict):
                out.append(b"data: " + jsonio.dumps(chat_to_text(obj, chunk=True)) + b"\n\n")
        if out:
            yield b"".join(out)


async def completions(request: web.Request) -> web.StreamResponse:
    parsed = await read_json(request, DIALECT)
    if isinstance(parsed, web.Response):
        return parsed
    _, legacy = parsed
    model = model_of(legacy)
    if model is None:
        return dialect_error(DIALECT, 400, "model is required", code="model_not_found")
    body = legacy_to_chat(legacy)
    stream = body.get("stream") is True
    call = call_of(request, DIALECT, model, body, jsonio.dumps(body), stream)
    services = request.app[SERVICES]
    try:
        outcome = await services.dispatcher.execute(services.holder.current, call)
    except RoutingError as exc:
        return routing_error_response(DIALECT, exc)
    if outcome.events is None:
        try:
            obj = jsonio.loads(outcome.body or b"{}")
        except ValueError:
            obj = None
        if isinstance(obj, dict) and outcome.status < 300:
            outcome.body = jsonio.dumps(chat_to_text(obj, chunk=False))
        return await write_outcome(request, outcome)
    inner_close = outcome.closer
    wrapped = _text_stream(outcome.events)

    async def close() -> None:
        await wrapped.aclose()
        if inner_close is not None:
            await inner_close()

    outcome.wrap_events(wrapped, close)
    return await write_outcome(request, outcome)
