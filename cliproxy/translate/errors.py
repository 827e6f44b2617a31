"""Error answers in each dialect's own shape, so every SDK raises its own exception class.

The envelopes live in the codecs (`chat.errors`, `claude.errors`, …); these are the entries the access
middleware, the handlers, the dispatcher and the stream writers call with the client's dialect.
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.codecs import CODECS


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
    """The error envelope as a dict; `err_type`/`code` override the status-derived defaults and `extra`
    adds keys next to the message. A dialect without types, codes or params leaves them out."""
    return CODECS[dialect].error_object(status, message, err_type=err_type, code=code, param=param, extra=extra)


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
    envelope = CODECS[dialect].error_object(status, message, err_type=err_type, code=code, param=param, extra=extra)
    return jsonio.dumps(envelope)


def stream_error_frame(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    sequence_number: int | None = None,
) -> bytes:
    """One SSE frame that reports an error after the stream has started; nothing may follow it (a chat
    stream must not end with `[DONE]` then). `sequence_number` continues a Responses stream's numbering."""
    frame = CODECS[dialect].stream_error_frame
    return frame(status, message, err_type=err_type, code=code, sequence_number=sequence_number)
