"""Single sign-on against a fake OpenID Connect provider through the running proxy: the first
sign-in of an allowed email creates the user with the defaults; an ID token with the wrong
issuer, audience, nonce, an expired one, one signed with an unknown key, an unverified email, a
domain not allowed, or a sign-in finished in another browser signs nobody in."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.accounts.helpers import Admin, Browser, config
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOIDC
from tests.fakes.upstreams import FakeUpstream


@pytest.fixture
async def oidc(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeOIDC:
    fake = FakeOIDC()
    server = await aiohttp_server(fake.app())
    fake.base_url = f"http://{server.host}:{server.port}"
    return fake


def sso_config(base: str, oidc: FakeOIDC, domains: str = "[example.com]") -> str:
    return config(
        base,
        f"""
sso:
  issuer: {oidc.base_url}
  client-id: {CLIENT_ID}
  client-secret: {CLIENT_SECRET}
  allowed-domains: {domains}
  default-role: user
  default-team: eng
""",
    )


async def sign_in_with_sso(browser: Browser, after: str = "#/keys") -> str:
    """Follow the whole redirect chain as a browser does; the panel address it ends on."""
    async with browser.http.get(browser.url + "/v0/account/sso/start", params={"after": after}) as r:
        assert r.status == 200, r.status
        return str(r.history[-1].headers["Location"])


async def proxy_with_team(start_proxy: Starter, base: str, oidc: FakeOIDC, **kw: Any) -> Proxy:
    proxy = await start_proxy(sso_config(base, oidc, **kw))
    await Admin(proxy).team("eng")
    return proxy


async def test_first_sso_sign_in_creates_the_user(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, oidc: FakeOIDC
) -> None:
    _, base = upstream
    proxy = await proxy_with_team(start_proxy, base, oidc)
    browser = Browser(proxy)
    _, options = await browser.call("GET", "/login-options", expect=200)
    assert options["sso"] is True
    landing = await sign_in_with_sso(browser)
    assert landing == "/management.html#/keys"
    _, me = await browser.call("GET", "/me", expect=200)
    assert me["user"]["email"] == "sso.user@example.com" and me["user"]["role"] == "user"
    assert me["team"]["name"] == "eng" and me["user"]["sso"] is True and me["user"]["has_password"] is False
    browser.csrf = me["csrf"]
    await browser.call("POST", "/keys", {"name": "from-sso"}, expect=201)
    # A second sign-in finds the same user (and a new session id).
    first = browser.cookie()
    await sign_in_with_sso(browser)
    assert browser.cookie() != first
    users = await Admin(proxy).call("GET", "/users", expect=200)
    assert [u["email"] for u in users["users"]] == ["sso.user@example.com"]
    await browser.close()


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://impostor.example"}, "another issuer"),
        ({"aud": "someone-else"}, "another client"),
        ({"nonce": "replayed-nonce"}, "nonce"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"email_verified": False}, "not verified"),
    ],
)
async def test_bad_id_tokens_sign_nobody_in(
    claims: dict[str, Any], reason: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter, oidc: FakeOIDC
) -> None:
    _, base = upstream
    proxy = await proxy_with_team(start_proxy, base, oidc)
    oidc.claims = claims
    browser = Browser(proxy)
    landing = await sign_in_with_sso(browser)
    assert landing.startswith("/management.html#/signin?error=")
    assert reason in unquote(landing)
    status, _ = await browser.call("GET", "/me")
    assert status == 401
    await browser.close()


async def test_token_signed_with_an_unpublished_key_is_refused(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, oidc: FakeOIDC
) -> None:
    _, base = upstream
    proxy = await proxy_with_team(start_proxy, base, oidc)
    oidc.other_key = True
    browser = Browser(proxy)
    landing = await sign_in_with_sso(browser)
    assert "error=" in landing and "Signature" in unquote(landing)
    status, _ = await browser.call("GET", "/me")
    assert status == 401
    await browser.close()


async def test_domain_not_allowed(upstream: tuple[FakeUpstream, str], start_proxy: Starter, oidc: FakeOIDC) -> None:
    _, base = upstream
    proxy = await proxy_with_team(start_proxy, base, oidc, domains="[corp.example]")
    browser = Browser(proxy)
    landing = await sign_in_with_sso(browser)
    assert "example.com addresses is not allowed" in unquote(landing)
    await browser.close()


async def test_sign_in_finished_in_another_browser_is_refused(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, oidc: FakeOIDC
) -> None:
    """A sign-in link started by an attacker (their binding cookie) cannot sign the victim in."""
    _, base = upstream
    proxy = await proxy_with_team(start_proxy, base, oidc)
    attacker = Browser(proxy)
    async with attacker.http.get(proxy.url + "/v0/account/sso/start", allow_redirects=False) as r:
        authorize = r.headers["Location"]
    async with aiohttp.ClientSession() as provider, provider.get(authorize, allow_redirects=False) as r:
        callback = r.headers["Location"]  # the provider sends the browser here with the code
    victim = Browser(proxy)
    async with victim.http.get(callback) as r:
        assert r.status == 200
        assert "another browser" in unquote(str(r.history[-1].headers["Location"]))
    status, _ = await victim.call("GET", "/me")
    assert status == 401
    await attacker.close()
    await victim.close()
