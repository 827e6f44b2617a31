"""The control panel for users and teams in headless Chromium: an invitation link to onboarding, the
member's pages (my keys, my usage, my team), an admin user managing users, teams and invitations
with a password sign-in, and `cliproxy login` approved on the panel's CLI sign-in page."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
import openai

from cliproxy.login_token import StoredLogin
from cliproxy.proxy_login import browser_sign_in
from tests.panel.browser import Panel
from tests.panel.conftest import ADMIN as MANAGEMENT_KEY
from tests.panel.conftest import MANAGEMENT, Starter
from tests.panel.live import LiveProxy

PASSWORD = "a long enough password"


def config(upstream: str) -> str:
    return f"""
host: 127.0.0.1
{MANAGEMENT}
openai-compatibility:
  - name: fake
    base-url: {upstream}/v1
    api-key-entries:
      - api-key: sk-upstream-0001
    models:
      - name: gpt-4o-mini
      - name: gpt-4o
api-keys: [sk-plain-panel-0001]
"""


def admin_call(proxy: LiveProxy, method: str, path: str, body: Any = None) -> Any:
    async def call() -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                proxy.url + "/v0/management" + path,
                json=body,
                headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"},
            ) as r,
        ):
            data = await r.json(content_type=None)
            assert r.status < 300, (r.status, data)
            return data

    return proxy.run(call())


def setup_team(proxy: LiveProxy) -> None:
    admin_call(proxy, "PUT", "/access-groups/mini", {"models": ["gpt-4o-mini"]})
    admin_call(proxy, "POST", "/teams", {"name": "eng", "access-groups": ["mini"], "budget-credits": 500})


def sign_in_with_password(tab: Panel, email: str) -> None:
    tab.set_value("#account-email", email)
    tab.set_value("#account-password", PASSWORD)
    tab.click("Sign in with password")
    tab.signed_in()


def test_invitation_onboarding_and_the_members_pages(live: Starter, panel: Callable[[LiveProxy], Panel]) -> None:
    proxy = live(config)
    setup_team(proxy)
    link = admin_call(proxy, "POST", "/invitations", {"email": "mia@example.com", "role": "user", "team": "eng"})[
        "link"
    ]
    tab = panel(proxy)
    tab.driver.get(link)
    tab.see("You are invited as mia@example.com (user in team eng)")
    tab.screenshot("invitation-onboarding-1280")
    tab.set_value("#invite-password", PASSWORD)
    tab.set_value("#invite-password-again", PASSWORD)
    tab.click("Set password and sign in")
    tab.signed_in()
    tab.see("mia@example.com · user", ".topbar")
    tab.one(".page-my-keys")
    nav = tab.text("nav")
    assert "My keys" in nav and "My usage" in nav and "My team" in nav
    assert "Overview" not in nav and "Users" not in nav  # a member manages nothing but their keys

    tab.click("New key")
    tab.set_value("#new-key-name", "laptop")
    tab.click("Create key")
    key = tab.until(lambda: tab.one(".secret-value").get_attribute("value"), "the new key")
    assert key.startswith("sk-cp-")
    tab.click("Done")
    tab.see("laptop", tab.row("key", "laptop"))

    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"

    tab.go("my-usage")
    tab.see("1", tab.row("key", "laptop"))
    tab.screenshot("my-usage-1280")
    tab.go("my-team")
    tab.see("credits left", ".my-team")
    tab.see("eng", ".my-team")
    tab.screenshot("my-team-1280")

    tab.go("my-keys")
    tab.click("Revoke", tab.row("key", "laptop"))
    tab.click("Revoke", "dialog")
    tab.see("revoked", tab.row("key", "laptop"))
    tab.click("Sign out")
    tab.one("#account-email")
    sign_in_with_password(tab, "mia@example.com")
    tab.one(".page-my-keys")
    assert not tab.errors_in_console()


def test_an_admin_user_manages_users_teams_and_invitations(live: Starter, panel: Callable[[LiveProxy], Panel]) -> None:
    proxy = live(config)
    setup_team(proxy)
    admin_call(proxy, "POST", "/users", {"email": "root@example.com", "role": "admin", "password": PASSWORD})
    admin_call(proxy, "POST", "/users", {"email": "nia@example.com", "role": "user", "team": "eng"})
    tab = panel(proxy)
    tab.open()
    sign_in_with_password(tab, "root@example.com")
    tab.see("root@example.com · admin", ".topbar")
    tab.one(".page-overview")  # the whole management panel, through the session cookie

    tab.go("users")
    tab.see("nia@example.com", tab.row("user", "nia@example.com"))
    tab.click("Disable", tab.row("user", "nia@example.com"))
    tab.see("disabled", tab.row("user", "nia@example.com"))
    tab.screenshot("users-1280")

    tab.go("teams")
    tab.click("Pause", tab.row("team", "eng"))
    tab.see("paused", tab.row("team", "eng"))
    tab.screenshot("teams-1280")
    assert admin_call(proxy, "GET", "/teams")["teams"][0]["state"] == "paused"

    tab.go("invitations")
    tab.click("Invite someone")
    tab.set_value("#invite-email", "olu@example.com")
    tab.click("Create invitation")
    link = tab.until(lambda: tab.one(".secret-value").get_attribute("value"), "the invitation link")
    assert "/management.html#/invite/" in link
    tab.click("Done")
    tab.see("olu@example.com", tab.row("invitation", "olu@example.com"))
    assert admin_call(proxy, "GET", "/invitations")["invitations"][0]["invited_by"] == "root@example.com"
    assert not tab.errors_in_console()


def approve_on_the_page(tab: Panel) -> None:
    """Click Approve and wait for its effect: the page's status line, or the CLI's landing page.

    A synthetic click dispatched while headless Chromium settles its layout after a full-page
    screenshot can land nowhere; only a click that left no trace at all (no status, the button
    still enabled, the page unchanged) is repeated, once. An answer the page shows is never retried.
    """

    def effect() -> str:
        if "Authentication successful" in tab.text():
            return "landed"
        status = tab.css(".page-cli-login [role=status]")
        return status[0].text.strip() if status else ""

    tab.click("Approve")
    try:
        shown = tab.until(effect, "the effect of Approve", timeout=5)
    except AssertionError:
        if tab.find_button("Approve") is not None:  # still enabled: the click left no trace
            tab.click("Approve")
        shown = tab.until(effect, "the effect of Approve")
    assert shown in ("landed", "Approved. Return to the terminal."), f"the panel answered: {shown}"


def test_cli_login_is_approved_on_the_panel(live: Starter, panel: Callable[[LiveProxy], Panel]) -> None:
    proxy = live(config)
    setup_team(proxy)
    admin_call(
        proxy, "POST", "/users", {"email": "pia@example.com", "role": "user", "team": "eng", "password": PASSWORD}
    )
    urls: queue.Queue[str] = queue.Queue()
    result: dict[str, Any] = {}

    async def hand_over(url: str) -> None:
        urls.put(url)  # the "browser" is the test's Chromium

    def cli() -> None:
        try:
            result["login"] = asyncio.run(browser_sign_in(proxy.url, announce=lambda _: None, open_url=hand_over))
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=cli, name="cliproxy-login")
    thread.start()
    tab = panel(proxy)
    tab.driver.get(urls.get(timeout=30))
    sign_in_with_password(tab, "pia@example.com")
    tab.see("asks to act as pia@example.com", ".page-cli-login")
    tab.screenshot("cli-login-approve-1280")
    approve_on_the_page(tab)
    tab.until(lambda: "Authentication successful" in tab.text(), "the CLI's landing page")
    thread.join(60)
    assert not thread.is_alive(), "the CLI still waits although its landing page was shown"
    assert "error" not in result, result
    login: StoredLogin = result["login"]
    assert login.user == "pia@example.com" and login.token.startswith("sk-cli-")
