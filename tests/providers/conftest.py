"""Fixtures of the provider tests: the fake upstream and the proxy (shared), a fake device-code OAuth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from tests.fakes.device_oauth import FakeDeviceOAuth
from tests.fakes.fixtures import start_proxy, upstream

__all__ = ["device_oauth", "start_proxy", "upstream"]


@pytest.fixture
async def device_oauth(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeDeviceOAuth:
    fake = FakeDeviceOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake
