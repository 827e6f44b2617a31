"""Security of sign-in and sessions through the running proxy: the cookie's attributes, a new session
id at every sign-in (no fixation), logout ending the session on the server, CSRF on every
state-changing call a cookie authenticates, brute-force limits per account and per address,
invitation links used twice or after expiry."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from cliproxy.accounts.passwords import Passwords
from cliproxy.management.guard import KEYLESS_PATHS
from cliproxy.server.services import SERVICES
from tests.accounts.helpers import PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


async def with_user(start_proxy: Starter, base: str, role: str = "admin") -> tuple[Proxy, Admin]:
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.call("POST", "/users", {"email": "eve@example.com", "role": role, "password": PASSWORD}, expect=201)
    return proxy, admin


async def test_session_cookie_attributes(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base)
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.url + "/v0/account/login", json={"email": "eve@example.com", "password": PASSWORD}) as r,
    ):
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("cliproxy_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; with TLS the cookie is Secure


async def test_sign_in_makes_a_new_session_id(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base)
    browser = Browser(proxy)
    # A value planted before sign-in (here a well-formed but unknown one) is replaced, not adopted.
    browser.plant("planted.9999999999.forged")
    await browser.sign_in("eve@example.com")
    first = browser.cookie()
    assert first and first != "planted.9999999999.forged"
    await browser.sign_in("eve@example.com")  # signing in again: yet another id, the old one ends
    second = browser.cookie()
    assert second != first
    old = Browser(proxy)
    old.plant(first)
    status, _ = await old.call("GET", "/me")
    assert status == 401
    status, _ = await browser.call("GET", "/me")
    assert status == 200
    await old.close()
    await browser.close()


async def test_logout_ends_the_session_on_the_server(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base)
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    copied = browser.cookie()
    await browser.call("POST", "/logout", expect=200)
    thief = Browser(proxy)
    thief.plant(copied)
    status, data = await thief.call("GET", "/me")
    assert status == 401, data
    status, _ = await thief.call("GET", "/v0/management/users")
    assert status == 401
    await thief.close()
    await browser.close()


def state_changing_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every state-changing route under /v0/account and /v0/management, with
    path parameters filled in with a placeholder."""
    found: list[tuple[str, str]] = []
    for sub in app._subapps:
        for route in sub.router.routes():
            if route.method not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter", "")
            found.append((route.method, path.replace("{", "").replace("}", "")))
    return found


async def test_csrf_on_every_state_changing_call(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role="admin")
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    app = proxy.server.app
    routes = state_changing_routes(app)
    public = {"/v0/account/login", "/v0/account/invitations/lookup", "/v0/account/invitations/accept"}
    public |= {"/v0/account/cli/token", "/v0/account/cli/device"}
    public |= KEYLESS_PATHS  # the OAuth provider's redirect: no caller, nothing a cookie authenticates
    checked = 0
    for method, path in routes:
        if path in public:
            continue
        for token in ("", "wrong-token"):
            browser.csrf = token
            status, data = await browser.call(method, path, {}, csrf=bool(token))
            assert status == 403, (method, path, status, data)
            assert "CSRF" in str(data), (method, path, data)
        checked += 1
    assert checked > 40  # every management change and every account change
    services = app[SERVICES]
    assert "eve@example.com" in services.accounts.users  # nothing was deleted or changed
    # A cross-site request is refused even with the right token; a public sign-in too.
    _, me = await browser.call("GET", "/me", expect=200)
    browser.csrf = me["csrf"]
    async with browser.http.post(
        proxy.url + "/v0/account/keys",
        json={"name": "x"},
        headers={"X-CSRF-Token": me["csrf"], "Origin": "https://evil.example"},
    ) as r:
        assert r.status == 403
    async with browser.http.post(
        proxy.url + "/v0/account/login",
        json={"email": "eve@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    ) as r:
        assert r.status == 403
    await browser.call("POST", "/keys", {"name": "fine"}, expect=201)  # with the token, from here: allowed
    await browser.close()


async def test_brute_force_locks_the_account(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role="user")
    browser = Browser(proxy)
    for _ in range(5):
        status, data = await browser.call("POST", "/login", {"email": "eve@example.com", "password": "wrong guess 1"})
        assert status == 401 and data["error"] == "wrong email or password"
    async with browser.http.post(
        proxy.url + "/v0/account/login", json={"email": "eve@example.com", "password": PASSWORD}
    ) as r:
        assert r.status == 429  # locked: even the right password waits
        assert int(r.headers["Retry-After"]) > 0
    # An unknown email answers like a wrong password (no way to learn who has an account).
    status, data = await browser.call("POST", "/login", {"email": "nobody@example.com", "password": "x" * 12})
    assert status == 401 and data["error"] == "wrong email or password"
    await browser.close()


async def test_brute_force_locks_the_address(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role="user")
    services = proxy.server.app[SERVICES]
    services.accounts.limiter.per_address = 6  # the same rule as the default 20, in fewer (slow) bcrypt checks
    browser = Browser(proxy)
    for n in range(6):  # a different account each time: only the address count reaches its limit
        await browser.call("POST", "/login", {"email": f"guess{n}@example.com", "password": "wrong guess 1"})
    status, _ = await browser.call("POST", "/login", {"email": "eve@example.com", "password": PASSWORD})
    assert status == 429
    await browser.close()


async def test_invitation_used_twice_or_expired(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    token = await admin.invite("frank@example.com")
    first = Browser(proxy)
    status, data = await first.call("POST", "/invitations/accept", {"token": token, "password": "short"})
    assert status == 400 and "at least 12 characters" in data["error"]  # the minimum length
    await first.accept(token)
    second = Browser(proxy)
    status, data = await second.call("POST", "/invitations/accept", {"token": token, "password": PASSWORD})
    assert status == 410 and "already used" in data["error"]
    status, _ = await second.call("POST", "/invitations/lookup", {"token": token})
    assert status == 410

    late = await admin.invite("grace@example.com")
    accounts = proxy.server.app[SERVICES].accounts
    accounts.clock = lambda: time.time() + 7 * 86_400 + 60  # a week and a minute later
    status, data = await second.call("POST", "/invitations/accept", {"token": late, "password": PASSWORD})
    assert status == 410 and "expired" in data["error"]
    status, _ = await second.call("POST", "/invitations/accept", {"token": "made-up", "password": PASSWORD})
    assert status == 404
    assert "grace@example.com" not in accounts.users
    await first.close()
    await second.close()


@pytest.mark.parametrize("role", ["user", "user-viewer"])
async def test_members_have_no_management_access(
    role: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role=role)
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    status, data = await browser.call("GET", "/v0/management/config")
    assert status == 403 and "no access" in data["error"]
    await browser.close()


async def test_sessions_expire(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role="user")
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    await browser.call("GET", "/me", expect=200)
    accounts = proxy.server.app[SERVICES].accounts
    accounts.clock = lambda: time.time() + 12 * 3600 + 60  # session-expiration-hours (12) and a minute
    status, _ = await browser.call("GET", "/me")
    assert status == 401
    await browser.close()


async def test_changing_ones_password(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base, role="user")
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    status, data = await browser.call("PUT", "/me/password", {"current": "not it at all", "new": "a brand new secret"})
    assert status == 401
    status, data = await browser.call("PUT", "/me/password", {"current": PASSWORD, "new": "short"})
    assert status == 400 and "at least 12" in data["error"]
    await browser.call("PUT", "/me/password", {"current": PASSWORD, "new": "a brand new secret"}, expect=200)
    fresh = Browser(proxy)
    status, _ = await fresh.call("POST", "/login", {"email": "eve@example.com", "password": PASSWORD})
    assert status == 401
    await fresh.sign_in("eve@example.com", "a brand new secret")
    await fresh.close()
    await browser.close()


async def test_the_first_unknown_email_check_leaves_the_event_loop_free() -> None:
    """The dummy hash an unknown email is checked against is made in the worker thread too: made on
    the event loop the first time, it would stall every other request for a bcrypt's time."""
    gaps: list[float] = []

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - before)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    assert not await Passwords(rounds=13).check("a guess", "")  # rounds no other test uses: not made yet
    took = time.monotonic() - started
    ticker.cancel()
    assert took > 0.3, took  # the dummy hash was really made and checked in this call
    assert max(gaps) < took / 2, (max(gaps), took)


async def test_non_ascii_cookie_or_csrf_token_is_refused_not_a_crash(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy, _ = await with_user(start_proxy, base)
    async with aiohttp.ClientSession() as http:
        for path in ("/v0/account/me", "/v0/management/config"):
            cookie = {"Cookie": "cliproxy_session=abc.9999999999.m\u00e4c"}
            async with http.get(proxy.url + path, headers=cookie) as r:
                assert r.status == 401, (path, r.status)
    browser = Browser(proxy)
    await browser.sign_in("eve@example.com")
    browser.csrf = "t\u00f6ken"
    status, _ = await browser.call("PUT", "/me/password", {"current": PASSWORD, "password": "another one here"})
    assert status == 403
    await browser.close()
