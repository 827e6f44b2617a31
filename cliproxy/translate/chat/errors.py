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


# The statuses OpenAI (and the providers that copy its envelope) answer with for each error type or
# code, for errors that arrive inside a stream, where there is no status line to read.
_STATUS_OF: dict[str, int] = {
    "invalid_request_error": 400,
    "invalid_request": 400,
    "invalid_prompt": 400,
    "invalid_value": 400,
    "unsupported_value": 400,
    "context_length_exceeded": 400,
    "string_above_max_length": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "server_error": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
    "overloaded_error": 529,
}


def known_status(err: dict[str, Any]) -> int | None:
    """The HTTP status an OpenAI-style error object stands for: its numeric `code`, else what its
    `type` or string `code` means; None when it names none of those."""
    code = err.get("code")
    if isinstance(code, int) and 400 <= code < 600:
        return code
    for key in ("type", "code", "status"):
        value = err.get(key)
        if isinstance(value, str) and value in _STATUS_OF:
            return _STATUS_OF[value]
    return None


def error_status(err: dict[str, Any]) -> int:
    """`known_status`, or 500 for an error that says nothing more."""
    return known_status(err) or 500


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
