"""Error responses in the client's dialect: the one place the API edge turns failures into answers.

Handlers answer their own input errors with `dialect_error`; routing's typed errors become
responses through `routing_error_parts` / `routing_error_response`, and the Responses WebSocket
uses the same parts for its in-band error events. The envelope itself comes from the dialect's
codec, so every SDK raises its own exception class.
"""

from __future__ import annotations

from aiohttp import web

from cliproxy.routing.errors import RoutingError, UpstreamFailed
from cliproxy.translate import Dialect
from cliproxy.translate.errors import error_body

_OPENAI_DIALECTS = frozenset({Dialect.CHAT, Dialect.RESPONSES})


def dialect_error(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    err_type: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON error response in the dialect's shape (the one way handlers return errors)."""
    return web.Response(
        body=error_body(dialect, status, message, err_type=err_type, code=code),
        headers=headers,
        status=status,
        content_type="application/json",
    )


def routing_error_parts(dialect: Dialect, exc: RoutingError) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers a client of `dialect` gets for a routing error.

    An upstream's own error JSON reaches a client of the same dialect byte for byte. Otherwise the
    envelope is built: the Anthropic one keeps the upstream's error type, the OpenAI ones carry the
    error's extra fields (the cooldown's `reset_seconds`, ...).
    """
    if isinstance(exc, UpstreamFailed):
        if exc.body and exc.body_dialect is dialect:
            return exc.status, exc.body, dict(exc.headers)
        err_type = exc.upstream_type if dialect is Dialect.CLAUDE else None
        return exc.status, error_body(dialect, exc.status, exc.message, err_type=err_type), dict(exc.headers)
    body = error_body(
        dialect,
        exc.status,
        exc.message,
        err_type=exc.err_type,
        code=exc.code,
        param=exc.param,
        extra=exc.details if dialect in _OPENAI_DIALECTS else None,
    )
    return exc.status, body, dict(exc.headers)


def routing_error_response(dialect: Dialect, exc: RoutingError) -> web.Response:
    status, body, headers = routing_error_parts(dialect, exc)
    headers["Content-Type"] = "application/json"
    return web.Response(body=body, status=status, headers=headers)
