"""OpenAI's error envelope `{"error": {message, type, param, code}}`, which the Responses API shares.

The `(type, code)` pairs are the ones the OpenAI API itself sends for each status, so the openai SDK
raises the matching exception class (`RateLimitError` for 429, `NotFoundError` for 404, …).
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio

_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_quota"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def openai_type(status: int) -> tuple[str, str | None]:
    """OpenAI's `(type, code)` for an HTTP status."""
    if status >= 500:
        return "server_error", "internal_server_error"
    return _TYPES.get(status, ("invalid_request_error", None))


def error_object(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The envelope as a dict; `extra` keys go next to the message."""
    dtype, dcode = openai_type(status)
    error: dict[str, Any] = {
        "message": message,
        "type": err_type or dtype,
        "param": param,
        "code": code if code is not None else dcode,
    }
    if extra:
        error.update(extra)
    return {"error": error}


def stream_error_frame(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    sequence_number: int | None = None,
) -> bytes:
    """`data: {"error": …}`. The caller must not send `[DONE]` afterwards: a stream that ends
    without it is how the openai SDK (and every chat client) tells a failure from a finished answer."""
    envelope = error_object(status, message, err_type=err_type, code=code)
    return b"data: " + jsonio.dumps(envelope) + b"\n\n"
