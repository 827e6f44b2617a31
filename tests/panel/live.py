"""A running proxy for tests that drive a real browser: cliproxy and its fake upstreams served on
real loopback ports from an event loop in a thread of its own.

Selenium blocks while the browser works, so the proxy cannot share the test's thread. The test
reads the fakes' records directly (plain lists) and runs coroutines on the proxy's loop with
`run`.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from cliproxy.server.services import SERVICES, Services
from tests.conftest import app_from_config, write_config
from tests.fakes.oauth import FakeOAuth
from tests.fakes.upstreams import FakeUpstream

T = TypeVar("T")
START_TIMEOUT = 30.0


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, int(port)


class LiveProxy:
    """`LiveProxy(dir, lambda upstream_url: yaml)`; `start()`, then `url`, `fake`, `services`, `stop()`.

    With `oauth=True` a `FakeOAuth` is served too and `oauth_env()` names its URLs; the test
    sets those variables before `start()` (the proxy reads them when it builds its services).
    """

    def __init__(self, directory: Path, config: Callable[[str], str], *, oauth: FakeOAuth | None = None) -> None:
        self.directory = directory
        self.config = config
        self.fake = FakeUpstream()
        self.oauth = oauth
        self.url = ""
        self.upstream_url = ""
        self.config_path = directory / "config.yaml"
        self._app: web.Application | None = None
        self._runners: list[web.AppRunner] = []  # the fakes'
        self._proxy: web.AppRunner | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-proxy", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = START_TIMEOUT) -> T:
        """Run `coro` on the proxy's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def serve_fakes(self) -> LiveProxy:
        """Start the fake upstream (and OAuth provider) first, so their URLs can go into the config."""

        async def start() -> None:
            runner, port = await _serve(self.fake.app())
            self._runners.append(runner)
            self.upstream_url = f"http://127.0.0.1:{port}"
            if self.oauth is not None:
                runner, port = await _serve(self.oauth.app())
                self._runners.append(runner)
                self.oauth.base_url = f"http://127.0.0.1:{port}"

        self.run(start())
        return self

    def start(self) -> LiveProxy:
        if not self.upstream_url:
            self.serve_fakes()
        path = write_config(self.directory, textwrap.dedent(self.config(self.upstream_url)))

        async def start() -> None:
            self._app = app_from_config(path)
            self._proxy, port = await _serve(self._app)
            self.url = f"http://127.0.0.1:{port}"

        self.run(start())
        return self

    @property
    def services(self) -> Services:
        assert self._app is not None
        return self._app[SERVICES]

    def stop_proxy(self) -> None:
        """Stop cliproxy only (the fakes keep running): the panel must say the proxy is down."""
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            self.run(proxy.cleanup())

    def stop(self) -> None:
        async def stop() -> None:
            if self._proxy is not None:
                await self._proxy.cleanup()
            for runner in reversed(self._runners):
                await runner.cleanup()

        try:
            self.run(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
