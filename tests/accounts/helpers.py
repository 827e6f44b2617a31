"""Helpers for the users-and-teams tests: a proxy with a management secret and a fake upstream, an
admin client for `/v0/management`, and a browser-like client (cookie jar, CSRF header) for
`/v0/account`."""

from __future__ import annotations

from typing import Any

import aiohttp
import bcrypt
from yarl import URL

from tests.fakes.fixtures import Proxy

ADMIN = "accounts-admin-secret"
ADMIN_HASH = bcrypt.hashpw(ADMIN.encode(), bcrypt.gensalt(rounds=4)).decode()
PASSWORD = "correct horse battery"


def config(base: str, extra: str = "") -> str:
    return f"""
host: 127.0.0.1
remote-management:
  secret-key: "{ADMIN_HASH}"
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-upstream-0001
    models:
      - name: gpt-4o
      - name: gpt-4o-mini
      - name: house-model-without-price
api-keys:
  - sk-plain-config-key-0001
{extra}
"""


class Admin:
    """The management API with the management secret."""

    def __init__(self, proxy: Proxy) -> None:
        self.base = proxy.url + "/v0/management"

    async def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}) as r,
        ):
            data = await r.json(content_type=None)
            if expect is not None:
                assert r.status == expect, (r.status, data)
            return data

    async def team(self, name: str, groups: dict[str, list[str]] | None = None, **fields: Any) -> None:
        for group, models in (groups or {}).items():
            await self.call("PUT", f"/access-groups/{group}", {"models": models}, expect=200)
        await self.call("POST", "/teams", {"name": name, **fields}, expect=201)

    async def invite(self, email: str, role: str = "user", team: str = "") -> str:
        """The invitation's token (from the link the admin would send)."""
        data = await self.call("POST", "/invitations", {"email": email, "role": role, "team": team}, expect=201)
        link: str = data["link"]
        return link.rsplit("/", 1)[1]


class Browser:
    """A browser's view of `/v0/account`: cookies kept, the CSRF token sent on changes."""

    def __init__(self, proxy: Proxy) -> None:
        self.url = proxy.url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def call(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True, expect: int | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        url = self.url + (path if path.startswith("/v0/") else "/v0/account" + path)
        async with self.http.request(method, url, json=body, headers=headers) as r:
            data = await r.json(content_type=None)
            if expect is not None:
                assert r.status == expect, (r.status, data)
            return r.status, data

    async def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        _, data = await self.call("POST", "/login", {"email": email, "password": password}, expect=200)
        self.csrf = data["csrf"]
        return data

    async def accept(self, token: str, password: str = PASSWORD) -> Any:
        _, data = await self.call("POST", "/invitations/accept", {"token": token, "password": password}, expect=200)
        self.csrf = data["csrf"]
        return data

    def plant(self, value: str) -> None:
        """Put a session cookie into this browser as if this proxy had set it."""
        self.http.cookie_jar.update_cookies({"cliproxy_session": value}, response_url=URL(self.url))

    def cookie(self) -> str:
        for morsel in self.http.cookie_jar:
            if morsel.key == "cliproxy_session":
                return morsel.value
        return ""
