"""Login flows end to end against the fake provider: PKCE, state, callback, paste, device code, re-login."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import aiohttp
import pytest

from cliproxy.credentials.login import BrowserLogin, browser_login
from cliproxy.credentials.oauth import OAuthError
from cliproxy.credentials.store import load_auth_dir
from tests.fakes.oauth import FakeOAuth, codex_device_login


def browser(session: aiohttp.ClientSession, *, tamper_state: bool = False) -> BrowserLogin:
    """A 'browser' that approves at once: GET the authorize URL and follow the redirect home."""

    async def open_url(url: str) -> None:
        async with session.get(url, allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            location = resp.headers["Location"]
        if tamper_state:
            location = location.replace("state=", "state=evil")
        async with session.get(location) as resp:
            assert resp.status == 200
            assert "Authentication" in await resp.text()

    return BrowserLogin(announce=lambda _msg: None, open_url=open_url, port=0, host="127.0.0.1", timeout=10)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_claude_browser_login_end_to_end(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    path = await browser_login(
        "claude", session=session, settings=fake_oauth.settings(), auth_dir=tmp_path, ui=browser(session)
    )
    # The fake rejected any exchange whose verifier did not hash to the challenge, or whose code
    # still carried `#state`; getting a file proves both were right.
    assert path.name == "claude-user@example.com.json"
    assert mode_of(path) == 0o600
    data = json.loads(path.read_text())
    assert data["type"] == "claude" and data["email"] == "user@example.com"
    assert data["access_token"].startswith("at-claude-") and data["refresh_token"].startswith("rt-claude-")
    assert data["expired"].endswith("Z") and data["last_refresh"].endswith("Z")
    assert data["account_uuid"] == "acc-uuid-1" and data["organization_name"] == "Example Org"
    assert fake_oauth.requests["claude:code"] == 1
    loaded = load_auth_dir(tmp_path)
    assert [c.label for c in loaded.credentials] == ["user@example.com"]


async def test_codex_browser_login_names_file_by_account_and_plan(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    path = await browser_login(
        "codex", session=session, settings=fake_oauth.settings(), auth_dir=tmp_path, ui=browser(session)
    )
    import hashlib

    digest = hashlib.sha256(b"acct-1234").hexdigest()[:8]
    assert path.name == f"codex-{digest}-user@example.com-plus.json"
    data = json.loads(path.read_text())
    assert data["account_id"] == "acct-1234" and data["id_token"].count(".") == 2
    cred = load_auth_dir(tmp_path).credentials[0]
    assert cred.account_id == "acct-1234" and cred.plan_type == "plus"


async def test_state_mismatch_is_refused_and_nothing_saved(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(OAuthError, match="State code error"):
        await browser_login(
            "codex",
            session=session,
            settings=fake_oauth.settings(),
            auth_dir=tmp_path,
            ui=browser(session, tamper_state=True),
        )
    assert list(tmp_path.iterdir()) == []
    assert fake_oauth.requests["codex:code"] == 0


async def test_pasted_redirect_url_completes_the_login(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    """The browser is elsewhere: the redirect never reaches us, the user pastes its URL."""
    shown: list[str] = []

    async def no_browser(url: str) -> None:
        shown.append(url)

    async def paste() -> str:
        async with session.get(shown[0], allow_redirects=False) as resp:
            return resp.headers["Location"]

    ui = BrowserLogin(
        announce=lambda _m: None, open_url=no_browser, read_pasted=paste, paste_after=0, port=0,
        host="127.0.0.1", timeout=10,
    )  # fmt: skip
    path = await browser_login("claude", session=session, settings=fake_oauth.settings(), auth_dir=tmp_path, ui=ui)
    assert json.loads(path.read_text())["email"] == "user@example.com"


async def test_codex_device_login_polls_until_approved(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    messages: list[str] = []
    path = await codex_device_login(
        session=session, settings=fake_oauth.settings(), auth_dir=tmp_path, announce=messages.append, timeout=30
    )
    assert "ABCD-1234" in messages[0] and f"{fake_oauth.base_url}/codex/device" in messages[0]
    assert fake_oauth.device_polls["dev-1"] == fake_oauth.device_pending_polls + 1
    assert fake_oauth.requests["codex:code"] == 1  # the code + server-made verifier were exchanged
    assert json.loads(path.read_text())["account_id"] == "acct-1234"


async def test_relogin_keeps_user_fields_and_replaces_tokens(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    existing = tmp_path / "claude-user@example.com.json"
    existing.write_text(
        json.dumps(
            {
                "type": "claude",
                "email": "user@example.com",
                "access_token": "old-access",
                "refresh_token": "old-refresh",
                "expired": "2020-01-01T00:00:00Z",
                "token_type": "old",
                "prefix": "team",
                "priority": 7,
                "proxy-url": "http://proxy.local:3128",
                "note": "keep me",
            }
        )
    )
    path = await browser_login(
        "claude", session=session, settings=fake_oauth.settings(), auth_dir=tmp_path, ui=browser(session)
    )
    data = json.loads(path.read_text())
    assert data["prefix"] == "team" and data["priority"] == 7 and data["note"] == "keep me"
    assert data["proxy_url"] == "http://proxy.local:3128"
    assert data["access_token"] != "old-access" and data["refresh_token"] != "old-refresh"
    assert data["expired"] != "2020-01-01T00:00:00Z" and "token_type" not in data
    assert mode_of(path) == 0o600
