"""Counters fed by hooks rather than usage records: OAuth refreshes and config reloads."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.credentials.files import format_time
from cliproxy.server.services import SERVICES
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.oauth import FakeOAuth
from tests.operations.scrape import Samples, scrape, value


@pytest.fixture
async def fake_oauth(aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]) -> FakeOAuth:
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def expired_claude_file(directory: Path, name: str, fake: FakeOAuth) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    data = {
        "type": "claude",
        "email": f"{name}@example.com",
        "access_token": "at-old",
        "refresh_token": fake.issue_refresh_token("claude"),
        "expired": format_time(datetime.now(UTC) - timedelta(minutes=1)),
    }
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)


async def scrape_until(proxy: Proxy, name: str, labels: dict[str, str], wanted: float) -> Samples:
    for _ in range(500):
        samples = await scrape(proxy.url)
        if value(samples, name, **labels) >= wanted:
            return samples
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name}{labels} never reached {wanted}")


async def test_oauth_refreshes_and_reloads_are_counted_by_outcome(
    tmp_path: Path, fake_oauth: FakeOAuth, start_proxy: Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, setting in fake_oauth.env().items():
        monkeypatch.setenv(name, setting)
    auths = tmp_path / "auths"
    expired_claude_file(auths, "first.json", fake_oauth)
    proxy = await start_proxy("auth-dir: ./auths\n")
    reloader = proxy.server.app[SERVICES].reloader
    refreshes = "cliproxy_oauth_refresh_total"
    await scrape_until(proxy, refreshes, {"provider": "claude", "outcome": "ok"}, 1)  # due at once

    fake_oauth.refresh_failure = (400, "invalid_grant")  # the refresh token is dead
    expired_claude_file(auths, "second.json", fake_oauth)
    assert (await reloader.reload_now()).ok
    await scrape_until(proxy, refreshes, {"provider": "claude", "outcome": "rejected"}, 1)

    fake_oauth.refresh_failure = (503, "temporarily_unavailable")  # worth another try later
    expired_claude_file(auths, "third.json", fake_oauth)
    assert (await reloader.reload_now()).ok
    samples = await scrape_until(proxy, refreshes, {"provider": "claude", "outcome": "error"}, 1)
    assert value(samples, refreshes, provider="claude", outcome="ok") == 1
    assert value(samples, refreshes, provider="claude", outcome="rejected") == 1

    config = tmp_path / "config.yaml"
    good = config.read_text()
    config.write_text(good + "port: not-a-port\n")
    assert not (await reloader.reload_now()).ok
    config.write_text(good + "debug: true\n")
    assert (await reloader.reload_now()).ok
    samples = await scrape(proxy.url)
    reloads = "cliproxy_config_reloads_total"
    assert value(samples, reloads, outcome="error") == 1
    # Every reload that swapped the runtime (two files added, the refreshed file written back, the
    # good edit), whoever asked for it (the watcher may have come first; ours then changed nothing).
    generation = proxy.server.app[SERVICES].holder.current.generation
    assert generation >= 3
    assert value(samples, reloads, outcome="ok") == generation
