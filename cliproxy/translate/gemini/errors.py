"""Google's error envelope `{"error": {code, message, status}}`, whole or as a stream frame.

`status` is the google.rpc code name Google pairs with each HTTP status; google-genai raises
`ClientError` for 4xx and `ServerError` for 5xx from it.
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio

_STATUS_NAMES: dict[int, str] = {
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


def google_status(status: int) -> str:
    """The google.rpc status name for an HTTP status."""
    if status in _STATUS_NAMES:
        return _STATUS_NAMES[status]
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def error_object(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The envelope as a dict; Google errors carry no type, string code or param, `extra` keys go next
    to the message."""
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status(status)}
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
    """A `data:` line with the envelope and no `event:` line: google-genai parses every SSE line as
    JSON, so an `event: error` line would make it fail with "Failed to parse response as JSON"
    instead of raising the error the envelope describes."""
    return b"data: " + jsonio.dumps(error_object(status, message)) + b"\n\n"
