"""Error bodies in each dialect's own shape, so every SDK raises its own exception class.

This is the one place that knows the four error envelopes; the access middleware, the handlers,
the dispatcher and the stream writers all go through `error_body` / `stream_error_frame`.
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect

_OPENAI_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_quota"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}

_ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_GOOGLE_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def openai_type(status: int) -> tuple[str, str | None]:
    """OpenAI `(type, code)` for a status (spec §5.9)."""
    if status >= 500:
        return "server_error", "internal_server_error"
    return _OPENAI_TYPES.get(status, ("invalid_request_error", None))


def anthropic_type(status: int) -> str:
    """Anthropic `error.type` for a status (spec §5.9)."""
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def google_status(status: int) -> str:
    """google.rpc status name for an HTTP status."""
    if status in _GOOGLE_STATUS:
        return _GOOGLE_STATUS[status]
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def error_object(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The error envelope as a dict; `err_type`/`code` override the status-derived defaults."""
    body: dict[str, Any]
    if dialect is Dialect.CLAUDE:
        body = {"type": "error", "error": {"type": err_type or anthropic_type(status), "message": message}}
    elif dialect is Dialect.GEMINI:
        body = {"error": {"code": status, "message": message, "status": google_status(status)}}
    else:
        dtype, dcode = openai_type(status)
        body = {
            "error": {
                "message": message,
                "type": err_type or dtype,
                "param": param,
                "code": code if code is not None else dcode,
            }
        }
    if extra:
        body["error"].update(extra)
    return body


def error_body(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """JSON bytes of `error_object`."""
    return jsonio.dumps(error_object(dialect, status, message, err_type=err_type, code=code, param=param, extra=extra))


def stream_error_frame(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    sequence_number: int | None = None,
) -> bytes:
    """One SSE frame that reports an error after the stream has started (spec §6.3).

    chat: `data: {"error":…}` (and the caller must NOT send `[DONE]` afterwards);
    claude: `event: error` with the Anthropic envelope; responses: `event: error` with a flat
    `{"type":"error","code","message","sequence_number"}`; gemini: `data:` + Google envelope (the SDK
    raises `ServerError`/`ClientError` from it; spec §6.3's `event: error` line breaks google-genai).
    """
    if dialect is Dialect.RESPONSES:
        dtype, dcode = openai_type(status)
        obj: dict[str, Any] = {
            "type": "error",
            "code": code or dcode or dtype,
            "message": message,
            "param": None,
            "sequence_number": sequence_number or 0,
        }
        return b"event: error\ndata: " + jsonio.dumps(obj) + b"\n\n"
    payload = error_body(dialect, status, message, err_type=err_type, code=code)
    if dialect is Dialect.CHAT or dialect is Dialect.GEMINI:
        # google-genai parses every SSE line as `data:` JSON: an `event:` line makes it fail with
        # "Failed to parse response as JSON" instead of raising the error the envelope describes
        return b"data: " + payload + b"\n\n"
    return b"event: error\ndata: " + payload + b"\n\n"
