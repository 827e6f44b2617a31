"""Inbound `gemini` dialect routes. (Skeleton: the routing issue implements the handlers.)"""

from __future__ import annotations

from aiohttp import web

from cliproxy.server.access import dialect_error
from cliproxy.translate import Dialect

DIALECT = Dialect.GEMINI


async def not_ready(request: web.Request) -> web.StreamResponse:
    return dialect_error(DIALECT, 501, f"{request.path} is not implemented yet")
