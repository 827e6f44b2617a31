"""Adding credentials from the panel in headless Chromium, against a fake OAuth provider: the browser
login (the provider's page opens in a new tab and sends the browser back through the proxy's
callback forwarder), the device code shown on the page, an uploaded auth file."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from selenium.webdriver.support.ui import Select

from tests.panel.browser import Panel
from tests.panel.conftest import ADMIN, Starter
from tests.panel.live import LiveProxy
from tests.panel.test_panel_admin import config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_login(tab: Panel, choice: str) -> None:
    tab.click("Log in to a provider")
    Select(tab.one("#login-choice")).select_by_value(choice)
    tab.click("Start", "dialog")


def test_browser_and_device_logins_from_the_page(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPROXY_CODEX_CALLBACK_PORT", str(free_port()))
    proxy = live(config(tmp_path / "auths"))
    assert proxy.oauth is not None
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("credentials")

    start_login(tab, "device:codex")
    tab.see("ABCD-1234", "dialog .user-code")
    tab.see(f"{proxy.oauth.base_url}/codex/device", "dialog")
    tab.screenshot("dialog-device-code-1280")
    tab.see("Logged in: saved as codex-", "dialog")
    assert proxy.oauth.requests["codex:code"] == 1
    tab.click("Close", "dialog")
    tab.until(
        lambda: [r for r in tab.css("tr[data-cred]") if r.get_attribute("data-cred").startswith("codex-")],
        "the new login",
    )

    start_login(tab, "browser:codex")
    panel_window = tab.driver.current_window_handle
    tab.click("Open the provider's sign-in page", "dialog")
    tab.until(lambda: len(tab.driver.window_handles) == 2, "the provider's page")
    provider_window = next(h for h in tab.driver.window_handles if h != panel_window)
    tab.driver.switch_to.window(provider_window)
    tab.see("Authentication successful")  # the proxy's landing page, reached through the forwarder
    tab.driver.close()
    tab.driver.switch_to.window(panel_window)
    tab.see("Logged in: saved as codex-", "dialog")
    tab.click("Close", "dialog")
    assert proxy.oauth.requests["codex:code"] == 2 and not proxy.oauth.codes  # the browser's code was redeemed


def test_upload_an_auth_file_and_import_a_vertex_service_account(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("credentials")
    upload = tmp_path / "claude-uploaded.json"
    upload.write_text(
        json.dumps({"type": "claude", "email": "up@example.com", "access_token": "at-up", "refresh_token": "rt-up"})
    )
    tab.one("#auth-upload").send_keys(str(upload))
    tab.see("Auth file uploaded.", "#toasts")
    tab.see("up@example.com", tab.row("cred", "claude-uploaded.json"))
    saved = tmp_path / "auths" / "claude-uploaded.json"
    assert saved.is_file() and saved.stat().st_mode & 0o077 == 0

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    account = {
        "type": "service_account",
        "project_id": "proj-7",
        "private_key": pem.decode(),
        "client_email": "sa@proj-7.iam",
    }
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(account))
    tab.click("Import vertex service account")
    tab.one("#import-file").send_keys(str(key_file))
    tab.set_value("#import-location", "europe-west4")
    tab.click("Import", "dialog")
    tab.see("Imported as vertex-proj-7.json.", "#toasts")
    tab.see("vertex", tab.row("cred", "vertex-proj-7.json"))
    assert json.loads((tmp_path / "auths" / "vertex-proj-7.json").read_text())["location"] == "europe-west4"
