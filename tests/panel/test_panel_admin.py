"""The control panel in headless Chromium, as an admin: sign in and see the running proxy's
credentials, create a client key and use it from the OpenAI SDK, switch a credential off and see
requests stop reaching it, watch a cooldown count down, and fix a YAML edit the proxy refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai

from tests.panel.browser import Panel
from tests.panel.conftest import ADMIN, MANAGEMENT, Starter
from tests.panel.live import LiveProxy

KEY_A, KEY_B = "sk-ant-upstream-aaaa1111", "sk-ant-upstream-bbbb2222"
CLIENT = "sk-plain-client-0001"


def config(auth_dir: Path, extra: str = "") -> Callable[[str], str]:
    def text(base: str) -> str:
        return f"""
host: 127.0.0.1
auth-dir: {auth_dir}
api-keys: [{CLIENT}]
claude-api-key:
  - api-key: {KEY_A}
    base-url: {base}
    models: [{{name: claude-fake-1, alias: claude-fake}}]
  - api-key: {KEY_B}
    base-url: {base}
    models: [{{name: claude-fake-1, alias: claude-fake}}]
openai-compatibility:
  - name: fakeco
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-compat-cccc3333}}]
    models: [{{name: gpt-4o}}]
{extra}{MANAGEMENT}"""

    return text


def ask_claude(proxy: LiveProxy, times: int = 1) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key=CLIENT, max_retries=0, timeout=30)
    for _ in range(times):
        client.messages.create(model="claude-fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def claude_login_file(proxy: LiveProxy) -> None:
    auths = proxy.directory / "auths"
    auths.mkdir(exist_ok=True)
    assert proxy.oauth is not None
    data = {
        "type": "claude",
        "email": "user@example.com",
        "access_token": "at-browser-0",
        "refresh_token": proxy.oauth.issue_refresh_token("claude"),
        "expired": "2099-01-01T00:00:00Z",
        "last_refresh": "2026-01-01T00:00:00Z",
    }
    (auths / "claude-user.json").write_text(json.dumps(data))
    (auths / "claude-user.json").chmod(0o600)


def seconds(text: str) -> int:
    """`1m 58s` → 118."""
    minutes = re.search(r"(\d+)m", text)
    secs = re.search(r"(\d+)s", text)
    return (int(minutes.group(1)) * 60 if minutes else 0) + (int(secs.group(1)) if secs else 0)


def test_sign_in_and_see_the_credentials_of_the_running_proxy(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"), before=claude_login_file)
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.signed_in()
    tab.see("Admin", ".topbar")
    tab.one(".page-overview .stat")
    # The key is in this tab's session storage only: no cookie, nothing in local storage.
    storage = tab.driver.execute_script(
        "return [sessionStorage.getItem('cliproxy.management-key'), JSON.stringify(localStorage), document.cookie]"
    )
    assert storage[0] == ADMIN and ADMIN not in storage[1] and storage[2] == ""

    tab.go("credentials")
    for name in ("claude-api-key[0]", "claude-api-key[1]", "openai-compatibility[0].api-key-entries[0]"):
        tab.see("Active", tab.row("cred", name))
    file_row = tab.row("cred", "claude-user.json")
    tab.see("user@example.com", file_row)
    tab.see("Expires", file_row)

    tab.click("Refresh now", file_row)
    tab.see("claude-user.json refreshed.", "#toasts")
    assert proxy.oauth is not None and proxy.oauth.requests["claude:refresh"] == 1
    assert json.loads((tmp_path / "auths" / "claude-user.json").read_text())["access_token"] != "at-browser-0"

    tab.click("Test now", tab.row("cred", "claude-api-key[0]"))
    tab.see("Test: ok — HTTP 200 in", tab.row("cred", "claude-api-key[0]"))
    assert len(proxy.fake.calls(KEY_A)) == 1 and not proxy.fake.calls(KEY_B)
    assert tab.errors_in_console() == []


def test_create_a_client_key_and_use_it_from_the_openai_sdk(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("keys")
    tab.see("No client keys with limits yet.")
    tab.click("New client key")
    tab.click("Create key", "dialog")  # no name yet: the dialog says so and stays open
    tab.see("Give the key a name.", "dialog .form-error")
    tab.set_value("#key-name", "ci-bot")
    tab.set_value("#key-models", "gpt-*")
    tab.set_value("#key-max-tokens-per-day", "10000")
    tab.click("Create key", "dialog")
    secret = tab.until(lambda: tab.one(".secret-dialog .secret-value").get_attribute("value"), "the new key")
    assert secret.startswith("sk-cp-")
    tab.see("This is the only time the key is shown", ".secret-dialog")
    tab.screenshot("dialog-new-key-secret-1280")
    tab.click("Copy", ".secret-dialog")
    tab.see("Cop", ".secret-dialog .copy-status")
    tab.click("Done", ".secret-dialog")
    tab.until(lambda: not tab.css("dialog"), "the dialog to close")
    assert secret not in tab.text()  # shown once: gone from the page
    assert secret not in proxy.config_path.read_text()  # the file keeps only its hash
    tab.click("New client key")
    tab.set_value("#key-name", "ci-bot")
    tab.click("Create key", "dialog")  # the server's refusal shows in the dialog, which stays open
    tab.see("a client key named 'ci-bot' already exists", "dialog .form-error")
    tab.click("Cancel", "dialog")
    tab.until(lambda: not tab.css("dialog"), "the dialog to close")

    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=secret, max_retries=0, timeout=30)
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"

    row = tab.row("key", "ci-bot")
    tab.see("gpt-*", row)
    tab.see("1 requests today", row, timeout=20)
    tab.see("8 / 10,000", row)  # the fake's 8 tokens against the daily allowance
    tab.click("Disable", row)
    tab.see("Disabled", row)
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("a disabled key was accepted")
    except openai.AuthenticationError as exc:
        assert "API key disabled" in str(exc)


def test_disable_a_credential_and_requests_stop_reaching_it(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("credentials")
    first = tab.row("cred", "claude-api-key[0]")
    tab.click("Disable", first)
    tab.see("Disabled", first)
    ask_claude(proxy, times=4)
    assert not proxy.fake.calls(KEY_A) and len(proxy.fake.calls(KEY_B)) == 4

    tab.click("Enable", first)
    tab.see("Active", first)
    ask_claude(proxy, times=2)
    assert len(proxy.fake.calls(KEY_A)) == 1  # round-robin again


def test_a_tripped_cooldown_counts_down_and_can_be_reset(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    proxy.fake.fail(429, key=KEY_A, times=0, dialect="claude", headers={"retry-after": "120"})
    ask_claude(proxy, times=2)  # round-robin tries key A once: 429, cooldown, the request fails over
    assert len(proxy.fake.calls(KEY_A)) == 1
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("credentials")
    row = tab.row("cred", "claude-api-key[0]")
    tab.see("Cooling down", row)
    countdown = f"{row} .countdown"
    start = seconds(tab.text(countdown))
    assert 100 < start <= 120, tab.text(countdown)
    tab.until(lambda: seconds(tab.text(countdown)) < start, "the cooldown to count down")
    tab.see("1 cooling down", ".page-credentials")
    tab.screenshot("credentials-cooling-1280")

    proxy.fake.plan.clear()
    tab.click("Reset cooldowns", row)
    tab.see("Active", row)
    assert not tab.css(countdown)
    ask_claude(proxy, times=2)
    assert len(proxy.fake.calls(KEY_A)) == 2  # back in rotation


def test_fix_a_bad_yaml_edit_after_seeing_its_error(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path
) -> None:
    proxy = live(config(tmp_path / "auths"))
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.go("config")
    editor = tab.one("#config-editor")
    tab.until(lambda: "claude-api-key" in editor.get_attribute("value"), "the config text")
    before = proxy.config_path.read_bytes()
    text = editor.get_attribute("value")
    assert "<redacted:secret-key>" in text  # the hash never reaches the page
    edit = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))"

    tab.driver.execute_script(
        edit, editor, text.replace(f"base-url: {proxy.upstream_url}/v1", "base-url: fakeco.local", 1)
    )
    tab.click("Save")
    tab.see("Not saved: the proxy refused this config.", "#config-errors")
    tab.see("openai-compatibility[0].base-url", "#config-errors")
    tab.see("not a URL", "#config-errors")
    assert proxy.config_path.read_bytes() == before
    tab.screenshot("config-error-1280")
    tab.one("#config-errors button.link").click()
    chosen = tab.driver.execute_script(
        "const e = arguments[0]; return e.value.slice(e.selectionStart, e.selectionEnd)", editor
    )
    assert "base-url: fakeco.local" in chosen  # the error took the cursor to its line

    tab.driver.execute_script(edit, editor, text.replace("host: 127.0.0.1", "host: 127.0.0.1\nrequest-retry: 2", 1))
    tab.click("Save")
    tab.see("Saved; the proxy runs on it now.")
    assert not tab.text("#config-errors")
    assert "request-retry: 2" in proxy.config_path.read_text()
    assert proxy.services.holder.current.config.request_retry == 2
    assert tab.errors_in_console() == []
