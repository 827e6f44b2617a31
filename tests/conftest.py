"""Shared fixtures: a real cliproxy app on the aiohttp test server, built from YAML text."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.runtime import RuntimeHolder
from cliproxy.server.app import build_app
from cliproxy.watch import load_runtime

ProxyFactory = Callable[[str], Awaitable[TestServer]]


def write_config(directory: Path, text: str) -> Path:
    path = directory / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def app_from_config(path: Path, *, clock: Callable[[], float] | None = None) -> web.Application:
    holder = RuntimeHolder(load_runtime(path))
    return build_app(holder) if clock is None else build_app(holder, clock=clock)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`~` is a temp dir: the default auth-dir (and its usage.sqlite3) never touch the real home;
    log files (error request logs are on by default) go there too, not into the checkout."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WRITABLE_PATH", str(home))
    return home


@pytest.fixture
async def proxy(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> ProxyFactory:
    """`await proxy(yaml_text)` → a running TestServer of cliproxy with that config."""

    async def start(text: str) -> TestServer:
        return await aiohttp_server(app_from_config(write_config(tmp_path, text)))

    return start
