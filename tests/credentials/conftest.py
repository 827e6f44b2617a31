"""Fixtures: a running fake OAuth provider and a client session, both torn down per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.oauth import FakeOAuth


@pytest.fixture
async def fake_oauth(aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> FakeOAuth:
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
