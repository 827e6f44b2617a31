"""Anthropic's error envelope `{"type": "error", "error": {type, message}}`, whole or as a stream event.

The error types are the ones the Anthropic API sends for each status, so the anthropic SDK raises
the matching exception class (`RateLimitError` for 429, `OverloadedError` for 529, …).
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio

_TYPES: dict[int, str] = {
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
_STATUSES: dict[str, int] = {kind: status for status, kind in _TYPES.items()} | {"api_error": 500}


def anthropic_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status."""
    if status in _TYPES:
        return _TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def status_of_type(err_type: Any) -> int | None:
    """The HTTP status Anthropic answers with for an `error.type` (None for a type it does not send),
    for errors that arrive inside a stream, where there is no status line to read."""
    return _STATUSES.get(err_type) if isinstance(err_type, str) else None


def error_object(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The envelope as a dict; Anthropic errors have no code or param, `extra` keys go next to the message."""
    error: dict[str, Any] = {"type": err_type or anthropic_type(status), "message": message}
    if extra:
        error.update(extra)
    return {"type": "error", "error": error}


def stream_error_frame(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    sequence_number: int | None = None,
) -> bytes:
    """`event: error` with the envelope: the anthropic SDK's stream raises it as an `APIStatusError`."""
    envelope = error_object(status, message, err_type=err_type)
    return b"event: error\ndata: " + jsonio.dumps(envelope) + b"\n\n"
