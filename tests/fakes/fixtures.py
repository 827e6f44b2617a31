"""Fixtures shared by the routing and API tests: a fake upstream, and the proxy pointed at it."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.routing.health import LocalCredentialHealth
from cliproxy.server.services import SERVICES
from cliproxy.usage import UsageStore
from tests.conftest import app_from_config, write_config
from tests.fakes.upstreams import FakeUpstream

CLIENT_KEY = "sk-client-test-key"


class Clock:
    """A hand-driven clock for cooldown tests (injected into the credential health)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Proxy:
    server: TestServer
    health: LocalCredentialHealth
    usage: UsageStore

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"


Starter = Callable[..., Awaitable[Proxy]]


async def hang_up_mid_stream(proxy: Proxy, fake: FakeUpstream, path: str, first: bytes, **post: Any) -> None:
    """Start a stream the upstream holds open, read its first bytes (`first` starts them), hang up;
    the upstream must see its request closed and the usage record must say 499."""
    fake.hold = True
    http = aiohttp.ClientSession()
    resp = await http.post(proxy.url + path, **post)
    assert resp.status == 200
    assert (await resp.content.readany()).startswith(first)
    resp.close()
    await http.close()
    await asyncio.wait_for(fake.closed.wait(), 5)
    for _ in range(100):
        if proxy.usage.recent():
            break
        await asyncio.sleep(0.02)
    assert proxy.usage.recent()[-1].status == 499


@pytest.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeUpstream, str]:
    """A running fake upstream and its base URL."""
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app())
    return fake, f"http://{server.host}:{server.port}"


@pytest.fixture
def start_proxy(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Starter:
    """`await start_proxy(yaml, clock=None)`: cliproxy with that config (client key `CLIENT_KEY`)."""

    async def start(text: str, clock: Clock | None = None) -> Proxy:
        text = textwrap.dedent(text)
        if "api-keys" not in text:
            text = f"api-keys: [{CLIENT_KEY}]\n" + text
        app = app_from_config(write_config(tmp_path, text), clock=clock)
        server = await aiohttp_server(app)
        services = app[SERVICES]
        return Proxy(server, services.health, services.usage)

    return start


def provider_yaml(section: str, base: str, keys: tuple[str, ...], models: str) -> str:
    """A provider list (`claude-api-key:`, ...) with one entry per upstream key, all on `base`."""
    entries = "".join(f"  - api-key: {k}\n    base-url: {base}\n    models:\n{models}" for k in keys)
    return f"{section}:\n{entries}"
