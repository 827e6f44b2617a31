"""Each codec's error envelope and mid-stream error frame, read by the official SDK of its dialect.

A tiny aiohttp server answers with exactly what `error_body` / `stream_error_frame` produce, so the
SDKs parse real HTTP: openai raises the class of the status (`RateLimitError` for 429, …), anthropic
likewise (`OverloadedError` for 529), google-genai `ClientError`/`ServerError` with Google's status
name. Mid-stream, each SDK reports the frame as an error after the text that came before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.codecs import CODECS
from cliproxy.translate.errors import error_body, error_object, stream_error_frame
from cliproxy.translate.ir import ErrorEvent, StreamStart, TextDelta
from cliproxy.translate.sse import SSEEvent

ServerFactory = Callable[..., Awaitable[TestServer]]

OPENAI_CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    503: openai.InternalServerError,
}
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}
ANTHROPIC_CLASSES: dict[int, tuple[type[anthropic.APIStatusError], str]] = {
    400: (anthropic.BadRequestError, "invalid_request_error"),
    401: (anthropic.AuthenticationError, "authentication_error"),
    403: (anthropic.PermissionDeniedError, "permission_error"),
    404: (anthropic.NotFoundError, "not_found_error"),
    429: (anthropic.RateLimitError, "rate_limit_error"),
    500: (anthropic.InternalServerError, "api_error"),
    529: (anthropic.OverloadedError, "overloaded_error"),
}
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


async def serve(aiohttp_server: ServerFactory, status: int, body: bytes, content_type: str) -> str:
    """A server answering every POST with `status` and `body`; returns its base URL."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    server = await aiohttp_server(app)
    return f"http://{server.host}:{server.port}"


def openai_client(base: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)


def gemini_client(base: str) -> genai.Client:
    options = types.HttpOptions(base_url=base, api_version="v1beta")
    return genai.Client(api_key="AIza-test", http_options=options)


@pytest.mark.parametrize("status", list(OPENAI_CLASSES))
@pytest.mark.parametrize("dialect", [Dialect.CHAT, Dialect.RESPONSES], ids=lambda d: d.value)
async def test_openai_envelopes_raise_the_status_class(
    aiohttp_server: ServerFactory, dialect: Dialect, status: int
) -> None:
    base = await serve(aiohttp_server, status, error_body(dialect, status, "no luck"), "application/json")
    client = openai_client(base)
    with pytest.raises(openai.APIStatusError) as caught:
        if dialect is Dialect.CHAT:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        else:
            await client.responses.create(model="m", input="hi")
    assert type(caught.value) is OPENAI_CLASSES[status]
    assert isinstance(caught.value.body, dict) and caught.value.body["message"] == "no luck"
    assert caught.value.type == OPENAI_TYPES[status]


async def test_openai_envelope_overrides_and_extra_keys(aiohttp_server: ServerFactory) -> None:
    """The cooldown error's shape: a code of its own and keys beside the message, still a RateLimitError."""
    extra = {"model": "gpt-x", "reset_time": "1s", "reset_seconds": 1, "provider": "openai"}
    body = error_body(
        Dialect.CHAT, 429, "cooling down", err_type="rate_limit_error", code="model_cooldown", extra=extra
    )
    base = await serve(aiohttp_server, 429, body, "application/json")
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client(base).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_cooldown" and caught.value.type == "rate_limit_error"
    assert isinstance(caught.value.body, dict) and caught.value.body["reset_seconds"] == 1
    assert error_object(Dialect.CHAT, 400, "bad", param="messages")["error"]["param"] == "messages"


@pytest.mark.parametrize("status", list(ANTHROPIC_CLASSES))
async def test_anthropic_envelopes_raise_the_status_class(aiohttp_server: ServerFactory, status: int) -> None:
    base = await serve(aiohttp_server, status, error_body(Dialect.CLAUDE, status, "no luck"), "application/json")
    client = anthropic.AsyncAnthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    cls, kind = ANTHROPIC_CLASSES[status]
    assert type(caught.value) is cls
    assert caught.value.body == {"type": "error", "error": {"type": kind, "message": "no luck"}}


@pytest.mark.parametrize("status", [*GOOGLE_STATUS, 500, 503])
async def test_google_envelopes_raise_client_or_server_errors(aiohttp_server: ServerFactory, status: int) -> None:
    base = await serve(aiohttp_server, status, error_body(Dialect.GEMINI, status, "no luck"), "application/json")
    with pytest.raises(genai_errors.APIError) as caught:
        await gemini_client(base).aio.models.generate_content(model="m", contents="hi")
    assert isinstance(caught.value, genai_errors.ClientError if status < 500 else genai_errors.ServerError)
    assert caught.value.code == status and caught.value.message == "no luck"
    assert caught.value.status == GOOGLE_STATUS.get(status, {500: "INTERNAL", 503: "UNAVAILABLE"}.get(status))


def stream_then_error(dialect: Dialect, status: int) -> bytes:
    """The dialect's own stream opening and a first text, then the module-level error frame."""
    encoder = CODECS[dialect].stream_encoder("m")
    opening = encoder.encode(StreamStart("id1", "m")) + encoder.encode(TextDelta(0, "Hello"))
    return opening + stream_error_frame(dialect, status, "Overloaded", sequence_number=99)


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
async def test_stream_error_frames_reach_each_sdk(aiohttp_server: ServerFactory, dialect: Dialect) -> None:
    status = 529 if dialect is Dialect.CLAUDE else 503
    base = await serve(aiohttp_server, 200, stream_then_error(dialect, status), "text/event-stream")
    text = ""
    if dialect is Dialect.CHAT:
        with pytest.raises(openai.APIError) as chat_error:
            stream = await openai_client(base).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for chunk in stream:
                text += "".join(c.delta.content or "" for c in chunk.choices)
        message = chat_error.value.message
    elif dialect is Dialect.RESPONSES:
        events: list[Any] = [
            e async for e in await openai_client(base).responses.create(model="m", input="hi", stream=True)
        ]
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        (error,) = [e for e in events if e.type == "error"]
        assert error.sequence_number == 99 and error.code == "internal_server_error"
        message = error.message
    elif dialect is Dialect.CLAUDE:
        client = anthropic.AsyncAnthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as claude_error:
            async with client.messages.stream(
                model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            ) as claude_stream:
                async for event in claude_stream:
                    if event.type == "text":
                        text += event.text
        assert claude_error.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        message = claude_error.value.message
    else:
        with pytest.raises(genai_errors.ServerError) as gemini_error:
            async for piece in await gemini_client(base).aio.models.generate_content_stream(model="m", contents="hi"):
                text += piece.text or ""
        assert gemini_error.value.code == 503 and gemini_error.value.status == "UNAVAILABLE"
        message = str(gemini_error.value.message)
    assert text == "Hello"
    assert "Overloaded" in message


def test_chat_error_frame_is_not_followed_by_done() -> None:
    frame = stream_error_frame(Dialect.CHAT, 502, "upstream stream broke")
    assert frame.startswith(b"data: {") and b"[DONE]" not in frame
    assert jsonio.loads(frame[6:])["error"]["type"] == "server_error"


def test_claude_stream_errors_keep_their_status() -> None:
    """An `event: error` inside a Claude stream has no status line: its type says which status it was."""
    for status, (_, kind) in ANTHROPIC_CLASSES.items():
        decoder = CODECS[Dialect.CLAUDE].stream_decoder()
        data = jsonio.dumps({"type": "error", "error": {"type": kind, "message": "x"}})
        (event,) = decoder.decode(SSEEvent("error", data))
        assert isinstance(event, ErrorEvent) and event.status == status
