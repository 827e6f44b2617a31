"""A test-only management resource module: one write endpoint guarded by `require_admin`."""

from __future__ import annotations

from aiohttp import web

from cliproxy.management.guard import MGMT_ROLE, require_admin

routes = web.RouteTableDef()


@routes.post("/probe")
async def probe_write(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response({"role": request[MGMT_ROLE]})


@routes.get("/probe")
async def probe_read(request: web.Request) -> web.Response:
    return web.json_response({"role": request[MGMT_ROLE]})
