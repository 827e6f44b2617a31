"""A small management API client for tests: loopback requests carrying the secret."""

from __future__ import annotations

from typing import Any

import aiohttp
import bcrypt
from aiohttp.test_utils import TestServer

SECRET = "mgmt-test-secret"
# Cost 4 keeps the suite fast; the guard accepts any bcrypt cost.
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
VIEWER = "mgmt-test-viewer"
VIEWER_HASH = bcrypt.hashpw(VIEWER.encode(), bcrypt.gensalt(rounds=4)).decode()

MANAGEMENT_BLOCK = f"""
remote-management:
  secret-key: "{SECRET_HASH}"
  viewer-keys: ["{VIEWER_HASH}"]
"""


class Reply:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


class Mgmt:
    """`await mgmt.put("/debug", json={"value": True})` → `Reply`."""

    def __init__(self, server: TestServer, key: str = SECRET) -> None:
        self.server = server
        self.key = key

    async def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.server.make_url("/v0/management" + path), headers=headers, **kwargs) as r,
        ):
            return Reply(r.status, await r.read(), dict(r.headers))

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("PATCH", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)
