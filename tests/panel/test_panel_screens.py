"""Every page of the control panel on a proxy with some history, at 1280 px and at phone width, in
light and dark mode: each fits its width (no sideways scrolling), logs no script error, and is
written to `build/screenshots/<page>-<width>[-dark].png` for a person to look at."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai
import pytest

from tests.panel.browser import DESKTOP, PHONE, SCREENSHOTS, Panel
from tests.panel.conftest import ADMIN, MANAGEMENT, Starter
from tests.panel.live import LiveProxy

KEY_A = "sk-ant-upstream-aaaa1111"
TEAM, BOT, PLAIN = "sk-team-a-00000001", "sk-ci-bot-00000002", "sk-plain-client-0003"
# page → what shows that its data has arrived
READY = {
    "overview": ".chart-svg",
    "credentials": "tr[data-cred]",
    "keys": "tr[data-key]",
    "providers": '[data-section="openai-compatibility"] table',
    "config": "#config-editor",
    "logs": "#error-logs-title",
}


def busy_proxy(auth_dir: Path) -> Callable[[str], str]:
    def text(base: str) -> str:
        return f"""
host: 127.0.0.1
auth-dir: {auth_dir}
logging-to-file: true
api-keys:
  - {PLAIN}
  - {{name: team-a, key: {TEAM}, max-budget-usd: 0.001, max-tokens-per-day: 100}}
  - {{name: ci-bot, key: {BOT}, models: ["gpt-*"], max-requests-per-minute: 30, expires: "2099-12-31"}}
claude-api-key:
  - api-key: {KEY_A}
    base-url: {base}
    models: [{{name: claude-fake-1, alias: claude-fake}}]
  - api-key: sk-ant-upstream-bbbb2222
    base-url: {base}
    models: [{{name: claude-fake-1, alias: claude-fake}}]
openai-compatibility:
  - name: fakeco
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-compat-cccc3333}}]
    models: [{{name: gpt-4o}}, {{name: gpt-4o-mini}}]
{MANAGEMENT}"""

    return text


def with_files(proxy: LiveProxy) -> None:
    auths = proxy.directory / "auths"
    auths.mkdir(exist_ok=True)
    assert proxy.oauth is not None
    login = {"type": "claude", "email": "user@example.com", "access_token": "at-1", "expired": "2099-01-01T00:00:00Z"}
    (auths / "claude-user.json").write_text(
        json.dumps({**login, "refresh_token": proxy.oauth.issue_refresh_token("claude")})
    )
    (auths / "broken.json").write_text("{not json")
    for path in auths.iterdir():
        path.chmod(0o600)


def traffic(proxy: LiveProxy) -> None:
    """Requests from three client keys, one failover, one error."""
    for key, model, times in ((TEAM, "gpt-4o", 3), (BOT, "gpt-4o-mini", 2), (PLAIN, "gpt-4o", 1)):
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, timeout=30)
        for _ in range(times):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    proxy.fake.fail(429, key=KEY_A, times=1, dialect="claude", headers={"retry-after": "600"})
    claude = anthropic.Anthropic(base_url=proxy.url, api_key=PLAIN, max_retries=0, timeout=30)
    for _ in range(2):
        claude.messages.create(model="claude-fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    proxy.fake.fail(400, times=1)
    try:
        openai.OpenAI(base_url=proxy.url + "/v1", api_key=PLAIN, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.BadRequestError:
        pass
    assert proxy.services.usage_db is not None
    proxy.run(proxy.services.usage_db.flush())


def test_every_page_at_both_widths_in_light_and_dark(
    live: Starter, panel: Callable[[LiveProxy], Panel], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as `cliproxy` runs: the log file gets the proxy's info lines
    proxy = live(busy_proxy(tmp_path / "auths"), before=with_files)
    traffic(proxy)
    tab = panel(proxy)
    tab.sign_in(ADMIN)
    tab.signed_in()
    written = []
    for dark in (False, True):
        for size in (DESKTOP, PHONE):
            tab.viewport(size, dark=dark)
            for page, ready in READY.items():
                tab.go(page)
                tab.one(ready)
                if page == "config":
                    tab.until(lambda: tab.one("#config-editor").get_attribute("value"), "the config text")
                if page == "logs":
                    tab.see("logging to", "#log-tail")  # the tail of the proxy's own log file
                name = f"{page}-{size[0]}{'-dark' if dark else ''}"
                assert not tab.overflows_horizontally(), f"{name} scrolls sideways"
                written.append(tab.screenshot(name))
    tab.viewport(PHONE)
    tab.go("keys")
    tab.click("New client key")
    written.append(tab.screenshot(f"dialog-new-key-{PHONE[0]}"))
    tab.click("Cancel", "dialog")
    tab.go("credentials")
    tab.click("Log in to a provider")
    written.append(tab.screenshot(f"dialog-login-{PHONE[0]}"))
    tab.click("Close", "dialog")
    assert tab.errors_in_console() == []
    assert all(path.parent == SCREENSHOTS and path.stat().st_size > 5000 for path in written)
