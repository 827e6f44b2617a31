"""Helpers of the provider tests: auth files, the proxy with an auth-dir, the management API."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter

SECRET = "mgmt-secret-for-providers"
SECRET_HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
ADMIN = {"Authorization": f"Bearer {SECRET}"}
LATER = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
EARLIER = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def put(auths: Path, name: str, data: dict[str, Any]) -> Path:
    auths.mkdir(exist_ok=True)
    path = auths / name
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    return path


async def proxy_with(start_proxy: Starter, auths: Path, extra: str = "", clock: Clock | None = None) -> Proxy:
    """cliproxy with `auths` as auth-dir, the management secret set, and `extra` YAML."""
    auths.mkdir(exist_ok=True)
    text = (
        f'api-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\nremote-management:\n  secret-key: "{SECRET_HASH}"\n'
        + textwrap.dedent(extra)
    )
    return await start_proxy(text, clock)


async def management(proxy: Proxy, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    kwargs.setdefault("headers", ADMIN)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, proxy.url + "/v0/management" + path, **kwargs) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def wait_login(proxy: Proxy, state: str) -> dict[str, Any]:
    for _ in range(1000):
        _, body = await management(proxy, "GET", f"/get-auth-status?state={state}")
        if body["status"] != "wait":
            return dict(body)
        await asyncio.sleep(0.01)
    raise AssertionError("the login never finished")


async def models(proxy: Proxy) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.url + "/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as resp,
    ):
        return [m["id"] for m in (await resp.json())["data"]]


async def until(predicate: Any, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
