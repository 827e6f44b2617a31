"""Fixtures for the panel's browser tests: one headless Chromium for the whole run, and per test a
live proxy (with its fakes) on loopback ports and a `Panel` tab pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.fakes.oauth import FakeOAuth
from tests.panel.browser import DESKTOP, Panel, find_browser, start_driver
from tests.panel.live import LiveProxy

ADMIN = "panel-admin-secret"
VIEWER = "panel-viewer-secret"
ADMIN_HASH = bcrypt.hashpw(ADMIN.encode(), bcrypt.gensalt(rounds=4)).decode()
VIEWER_HASH = bcrypt.hashpw(VIEWER.encode(), bcrypt.gensalt(rounds=4)).decode()
MANAGEMENT = f"""
remote-management:
  secret-key: "{ADMIN_HASH}"
  viewer-keys: ["{VIEWER_HASH}"]
"""


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    reason = find_browser()
    if reason is not None:
        pytest.skip(f"no browser for the panel tests: {reason}")
    browser = start_driver()
    try:
        yield browser
    finally:
        browser.quit()


Starter = Callable[..., LiveProxy]


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Starter]:
    """`live(lambda upstream_url: yaml, oauth=FakeOAuth(), before=fn)` → a started `LiveProxy`.

    The OAuth flows point at the fake provider; `before(proxy)` runs once the fakes are up and
    before the proxy starts (to write auth files that need the fake's refresh tokens).
    """
    started: list[LiveProxy] = []

    def start(
        config: Callable[[str], str],
        *,
        oauth: FakeOAuth | None = None,
        before: Callable[[LiveProxy], None] | None = None,
    ) -> LiveProxy:
        directory = tmp_path if not started else tmp_path / f"proxy-{len(started)}"  # each its own config.yaml
        directory.mkdir(exist_ok=True)
        proxy = LiveProxy(directory, config, oauth=oauth or FakeOAuth())
        started.append(proxy)
        proxy.serve_fakes()
        assert proxy.oauth is not None
        for name, value in proxy.oauth.env().items():
            monkeypatch.setenv(name, value)  # never the real providers
        if before is not None:
            before(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def panel(driver: Any) -> Callable[[LiveProxy], Panel]:
    """`panel(proxy)` → a tab on that proxy's panel, at desktop width in light mode."""

    def open_panel(proxy: LiveProxy) -> Panel:
        tab = Panel(driver, proxy.url)
        tab.viewport(DESKTOP)
        tab.errors_in_console()  # forget what earlier tests left
        return tab

    return open_panel
