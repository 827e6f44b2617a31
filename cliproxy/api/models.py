"""Model listings. (Skeleton: the routing issue implements the listing shapes.)"""

from __future__ import annotations

from aiohttp import web

from cliproxy.server.access import dialect_error, route_dialect


async def not_ready(request: web.Request) -> web.StreamResponse:
    return dialect_error(route_dialect(request), 501, f"{request.path} is not implemented yet")
