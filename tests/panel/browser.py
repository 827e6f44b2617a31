"""Headless Chromium for the panel tests: Debian's `chromium` and `chromium-driver` through Selenium.

`find_browser()` installs the two Debian packages when they are missing and we may (root with
apt-get, as on CI), and otherwise says why the tests cannot run, so they skip with that reason.
Nothing is downloaded but Debian packages: Selenium is told where the driver and the browser are
(and to stay offline), so its own driver manager never runs.

`Panel` is what a test does with the page: sign in, go to a page, wait for text, click a button
by its label, take a full-page screenshot into `build/screenshots/` (not committed).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT_SECONDS = 15.0
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--lang=en-US",
)
T = TypeVar("T")


def find_browser() -> str | None:
    """None when Chromium and its driver are there (installed now if needed), else why not."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"could not install chromium: {' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() else "chromium did not install"


def start_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium's manager fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='cliproxy-chromium-')}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Panel:
    """One browser tab on one proxy's panel."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base = base_url

    # ------------------------------------------------------------------ waiting

    def until(self, check: Callable[[], T], what: str, timeout: float = WAIT_SECONDS) -> T:
        """Poll `check` until it returns something truthy (exceptions count as not yet)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                value = check()
                if value:
                    return value
            except Exception as exc:  # stale elements while the panel re-renders
                last = exc
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))
            time.sleep(0.1)

    def css(self, selector: str) -> list[Any]:
        return list(self.driver.find_elements("css selector", selector))

    def one(self, selector: str, timeout: float = WAIT_SECONDS) -> Any:
        return self.until(lambda: (self.css(selector) or [None])[0], f"an element {selector!r}", timeout)

    def text(self, selector: str = "body") -> str:
        return str(self.driver.find_element("css selector", selector).text)

    def see(self, text: str, selector: str = "body", timeout: float = WAIT_SECONDS) -> None:
        self.until(lambda: text in self.text(selector), f"{text!r} in {selector}", timeout)

    def find_button(self, label: str, within: str = "body") -> Any:
        """The visible, enabled button (or link styled as one) whose text is `label`, or None."""
        for el in self.css(f"{within} button, {within} a.button"):
            if el.text.strip() == label and el.is_displayed() and el.is_enabled():
                return el
        return None

    def click(self, label: str, within: str = "body") -> None:
        """Click the button `label`; the panel re-renders polled tables, so a stale find is retried."""

        def press() -> bool:
            button = self.find_button(label, within)
            if button is None:
                return False
            button.click()
            return True

        self.until(press, f"a button {label!r} in {within}")

    def row(self, attribute: str, value: str) -> str:
        """A CSS selector for the table row whose `data-<attribute>` is `value`."""
        return f'tr[data-{attribute}="{value}"]'

    # ------------------------------------------------------------------ pages

    def open(self, page: str = "") -> None:
        self.driver.get(f"{self.base}/management.html" + (f"#/{page}" if page else ""))

    def go(self, page: str) -> None:
        self.one(f'nav a[data-page="{page}"]').click()
        self.until(lambda: self.css(f".page-{page}"), f"the {page} page")

    def sign_in(self, key: str) -> None:
        self.open()
        field = self.one("#management-key")
        field.clear()
        field.send_keys(key)
        self.click("Sign in")

    def signed_in(self) -> None:
        self.one("header.topbar")

    def set_value(self, selector: str, value: str) -> None:
        """Type into a field as a user would: focus, select all, type the new text."""
        from selenium.webdriver.common.keys import Keys

        el = self.one(selector)
        el.click()
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.DELETE)
        el.send_keys(value)

    def errors_in_console(self) -> list[str]:
        """Script errors and CSP violations in the console since the last call (an API error answer
        the panel handled, logged by Chromium as a failed resource, is not one)."""
        return [
            e["message"]
            for e in self.driver.get_log("browser")
            if e.get("level") == "SEVERE" and "Failed to load resource" not in e["message"]
        ]

    # ------------------------------------------------------------------ screens

    def viewport(self, size: tuple[int, int], *, dark: bool = False) -> None:
        width, height = size
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        scheme = "dark" if dark else "light"
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )

    def overflows_horizontally(self) -> bool:
        return bool(self.driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1"))

    def screenshot(self, name: str) -> Path:
        """The whole page (not just the viewport) as `build/screenshots/<name>.png`."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width = int(self.driver.execute_script("return window.innerWidth"))
        height = min(int(size["height"]), 6000)
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        self.settle()
        return path

    def settle(self) -> None:
        """Wait two frames, so the layout a capture beyond the viewport disturbed is back before a click."""
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));"
        )
