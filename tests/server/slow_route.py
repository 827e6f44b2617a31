"""A test-only feature: `GET /test/slow` sends its headers, waits, then finishes its body.

It lets a subprocess test hold a request in flight while the server receives SIGTERM.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


async def slow(request: web.Request) -> web.StreamResponse:
    seconds = float(request.query.get("seconds", "1.5"))
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(b"started;")
    await asyncio.sleep(seconds)
    await response.write(b"finished")
    await response.write_eof()
    return response


def install(app: web.Application) -> None:
    app.router.add_get("/test/slow", slow)
