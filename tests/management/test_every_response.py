"""Every management route, as the admin, for success and for bad input: `Cache-Control: no-store`,
CORS, the version headers, and never the management secret or a bcrypt hash in the body."""

from __future__ import annotations

import aiohttp

from cliproxy import __version__
from tests.conftest import ProxyFactory
from tests.keys.test_roles import management_routes
from tests.management.client import SECRET, SECRET_HASH, VIEWER, VIEWER_HASH

CONFIG = f"""
host: 127.0.0.1
api-keys: [sk-client-every-route-1]
remote-management:
  secret-key: "{SECRET_HASH}"
  viewer-keys: ["{VIEWER_HASH}"]
claude-api-key:
  - api-key: sk-ant-every-route-2
"""


async def test_every_route_answers_no_store_and_never_a_secret_hash(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    routes = management_routes(server)
    assert len(routes) > 60
    # GETs first (read-only), then every other method with a body no handler accepts, so nothing
    # destructive happens; then the same paths unauthenticated, and a path that does not exist.
    ordered = [r for r in routes if r[0] == "GET"] + [r for r in routes if r[0] != "GET"]
    seen_statuses: set[int] = set()
    async with aiohttp.ClientSession() as session:
        for method, path in ordered:
            for headers in ({"Authorization": f"Bearer {SECRET}"}, {}, {"X-Management-Key": "wrong"}):
                async with session.request(
                    method, server.make_url(path), headers=headers, data=b"\x00 not json nor yaml: ["
                ) as r:
                    body = await r.text()
                    seen_statuses.add(r.status)
                    assert r.headers.get("Cache-Control") == "no-store", (method, path, r.status)
                    assert r.headers.get("X-CPA-VERSION") == __version__, (method, path)
                    assert r.headers.get("Access-Control-Allow-Origin") == "*", (method, path)
                    for secret in (SECRET, SECRET_HASH, VIEWER, VIEWER_HASH, "$2b$"):
                        assert secret not in body, (method, path, secret)
        async with session.get(
            server.make_url("/v0/management/no-such-endpoint"), headers={"Authorization": f"Bearer {SECRET}"}
        ) as r:
            assert (r.status, r.headers.get("Cache-Control")) == (404, "no-store")
    assert {200, 400, 401} <= seen_statuses
