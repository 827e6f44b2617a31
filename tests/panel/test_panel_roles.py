"""The control panel in headless Chromium when things are not as they should be: a wrong key, a viewer
key (every page, read-only, secrets redacted), a proxy whose management API is off, a proxy that
went away."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.panel.browser import Panel
from tests.panel.conftest import ADMIN, VIEWER, Starter
from tests.panel.live import LiveProxy
from tests.panel.test_panel_admin import KEY_A, KEY_B, config


def test_a_wrong_key_is_refused_with_a_clear_message(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in("not-the-management-key")
    tab.see("That key was not accepted", "#login-error")
    tab.screenshot("sign-in-wrong-key-1280")
    assert not tab.css("header.topbar")
    assert tab.driver.execute_script("return sessionStorage.length") == 0  # a refused key is not kept
    tab.open("credentials")  # a page's address without a key still asks for one
    tab.one("#management-key")
    assert not tab.css("header.topbar")


def test_a_viewer_sees_every_page_read_only_with_secrets_redacted(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(VIEWER)
    tab.see("Viewer · read-only", ".topbar")
    tab.one(".page-overview .stat")

    tab.go("credentials")
    row = tab.row("cred", "claude-api-key[0]")
    tab.see("sk-…1111", row)
    tab.screenshot("viewer-credentials-1280")
    assert "ACTIONS" not in tab.text(".page-credentials thead").upper()
    for label in ("Disable", "Test now", "Reset cooldowns", "Upload auth file", "Log in to a provider"):
        assert tab.find_button(label) is None, label

    tab.go("keys")
    tab.see("Plain keys", ".page-keys")
    assert tab.find_button("New client key") is None

    tab.go("providers")
    tab.see("Read-only: viewer keys cannot change settings.")
    tab.see("sk-…2222", '[data-section="claude-api-key"]')
    assert all(not el.is_enabled() for el in tab.css(".settings input, .settings select"))
    assert not tab.css("details.add")

    tab.go("config")
    editor = tab.one("#config-editor")
    tab.until(lambda: "claude-api-key" in editor.get_attribute("value"), "the config text")
    assert editor.get_attribute("readonly") is not None and tab.find_button("Save") is None

    tab.go("logs")
    tab.see("Logging to file is off.")
    assert tab.find_button("Turn on logging to file") is None
    source = tab.driver.page_source
    for page in ("overview", "credentials", "keys", "providers", "config"):
        tab.go(page)
        source += tab.driver.page_source
    for secret in (KEY_A, KEY_B, "sk-compat-cccc3333", VIEWER, ADMIN):
        assert secret not in source
    assert tab.errors_in_console() == []


def test_management_off_and_proxy_down_are_explained(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    no_secret = live(lambda base: config(tmp_path / "auths")(base).split("\nremote-management:")[0])
    tab = panel(no_secret)
    tab.sign_in("anything")
    tab.see("The management API is off on this proxy", "#login-error")
    tab.screenshot("sign-in-management-off-1280")

    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("credentials")
    tab.see("Active", tab.row("cred", "claude-api-key[0]"))
    proxy.stop_proxy()
    tab.see("Cannot reach the proxy. Retrying every few seconds", "#banner")
    tab.screenshot("proxy-down-1280")


def test_the_panel_works_from_the_keyboard(live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.open()
    tab.until(
        lambda: tab.driver.switch_to.active_element.get_attribute("id") == "management-key", "the key field focused"
    )
    tab.driver.switch_to.active_element.send_keys(ADMIN + Keys.ENTER)  # Enter submits
    tab.signed_in()
    keys = ActionChains(tab.driver)

    def focused() -> Any:
        return tab.driver.switch_to.active_element

    def tab_to(check: Callable[[Any], bool], what: str) -> None:
        for _ in range(60):
            keys.send_keys(Keys.TAB).perform()
            if check(focused()):
                return
        raise AssertionError(f"Tab never reached {what}")

    tab.driver.execute_script("document.activeElement.blur()")
    tab_to(lambda el: el.text == "Skip to content", "the skip link")
    tab_to(lambda el: el.get_attribute("data-page") == "credentials", "the Credentials link")
    keys.send_keys(Keys.ENTER).perform()
    tab.until(lambda: focused().get_attribute("id") == "page-title", "the page title focused")
    tab.see("Active", tab.row("cred", "claude-api-key[0]"))
    tab_to(lambda el: el.get_attribute("data-focus-key") is not None and el.text == "Test now", "a Test now button")
    key = focused().get_attribute("data-focus-key")
    keys.send_keys(Keys.ENTER).perform()
    tab.see("Test: ok", ".page-credentials")
    tab.until(lambda: focused().get_attribute("data-focus-key") == key, "the focus to stay after the action")
    tab.driver.execute_script("arguments[0].dataset.stale = '1'", focused())
    tab.until(
        lambda: focused().get_attribute("data-stale") is None, "a re-render", timeout=10
    )  # the table was redrawn…
    assert focused().get_attribute("data-focus-key") == key  # …and the button kept the focus

    tab_to(lambda el: el.text == "Log in to a provider", "the login button")
    keys.send_keys(Keys.ENTER).perform()
    tab.until(lambda: tab.css("dialog[open]"), "the dialog")
    assert tab.driver.execute_script("return document.activeElement.closest('dialog') !== null")  # focus moved in
    keys.send_keys(Keys.ESCAPE).perform()
    tab.until(lambda: not tab.css("dialog"), "Escape to close the dialog")
