"""Responses errors: OpenAI's envelope for whole answers, a flat `error` event inside a stream."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate.chat.errors import error_object, error_status, openai_type

__all__ = ["error_object", "error_status", "stream_error_frame"]


def stream_error_frame(
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    sequence_number: int | None = None,
) -> bytes:
    """`event: error` with `{"type":"error","code","message","param","sequence_number"}`: the stream
    event the openai SDK yields as an error. It has no error type, so `err_type` is not used; the code
    falls back to the status's OpenAI code, then type. `sequence_number` continues the stream's numbering."""
    dtype, dcode = openai_type(status)
    event: dict[str, Any] = {
        "type": "error",
        "code": code or dcode or dtype,
        "message": message,
        "param": None,
        "sequence_number": sequence_number or 0,
    }
    return b"event: error\ndata: " + jsonio.dumps(event) + b"\n\n"
