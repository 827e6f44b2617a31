"""Two servers on one config file (worker processes do this): concurrent management writes through
both lose nothing, because each write holds a lock on the config's directory while it reads,
edits and replaces the file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import bcrypt
from aiohttp.test_utils import TestServer

from cliproxy.config.load import load_config
from tests.conftest import app_from_config, write_config

SECRET = "writers-together-secret"
FIELDS = {
    "request-retry": 3,
    "max-retry-credentials": 2,
    "max-retry-interval": 7,
    "debug": True,
    "passthrough-headers": True,
    "disable-cooling": True,
}


async def test_concurrent_writes_through_two_servers_all_land(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    secret_hash = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = write_config(
        tmp_path,
        "host: 127.0.0.1\nauth-dir: ./auths\napi-keys: [sk-writers-client]\n"
        f'remote-management:\n  secret-key: "{secret_hash}"\n',
    )
    servers = [await aiohttp_server(app_from_config(path)) for _ in range(2)]
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with aiohttp.ClientSession() as http:

        async def put(server: TestServer, name: str, value: object) -> None:
            async with http.put(server.make_url(f"/v0/management/{name}"), json={"value": value}, headers=headers) as r:
                assert r.status == 200, await r.text()

        await asyncio.gather(*(put(servers[i % 2], name, value) for i, (name, value) in enumerate(FIELDS.items())))
    config = load_config(path).config.model_dump(by_alias=True)
    assert {name: config[name] for name in FIELDS} == FIELDS
