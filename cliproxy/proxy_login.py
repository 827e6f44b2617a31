"""`cliproxy login --proxy URL` (or `cliproxy login` with `CLIPROXY_URL`): sign in to a proxy.

Browser: listen on a loopback port, open the proxy's panel at its CLI sign-in page with our
redirect address, state and PKCE challenge; the user signs in there (password or SSO) and
approves; the browser brings a one-time code back to us, and we trade it with the PKCE verifier
for a personal token. Device (`--device`, for machines without a browser): show a code to type
into the panel on any device, and poll until it is approved. Either way the token is a client key
that expires after the proxy's `cli-token-expiration-hours`, stored 0600 (see `login_token`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from cliproxy.credentials.oauth import CallbackServer, OAuthError, generate_pkce, generate_state, open_in_browser
from cliproxy.login_token import StoredLogin, normal_url, save_login
from cliproxy.secret_files import SecretFileError

CALLBACK_PATH = "/callback"
TIMEOUT_SECONDS = 300.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_INTERVAL = 30  # seconds between polls, whatever the proxy asks

Announce = Callable[[str], None]


class LoginFailed(Exception):
    """The sign-in did not complete; the message says why."""


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        async with http.post(url, json=body) as resp:
            data = await resp.json(content_type=None)
            return resp.status, data if isinstance(data, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise LoginFailed(f"cannot reach {url}: {exc.__class__.__name__}: {exc}") from None


def _text(data: dict[str, Any], name: str) -> str:
    """A field the proxy must send as text; a clear LoginFailed rather than a traceback if it did not."""
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise LoginFailed(f"the proxy's answer has no valid {name!r} (is this URL a cliproxy?)")
    return value


def _number(data: dict[str, Any], name: str) -> float | None:
    """An optional numeric field (None when absent); LoginFailed when it is not a finite number."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LoginFailed(f"the proxy's answer has an invalid {name!r}: a number was expected")
    return float(value)


def _stored(proxy: str, data: dict[str, Any]) -> StoredLogin:
    if not isinstance(data.get("token"), str):
        raise LoginFailed("the proxy issued no token")
    return StoredLogin(
        proxy=proxy,
        token=data["token"],
        expires=_number(data, "expires"),
        created=_number(data, "created") or time.time(),
        user=str(data.get("user") or ""),
        role=str(data.get("role") or ""),
        team=str(data.get("team") or ""),
    )


async def browser_sign_in(
    proxy: str,
    *,
    announce: Announce,
    open_url: Callable[[str], Awaitable[None]] | None,
    port: int = 0,
    timeout: float = TIMEOUT_SECONDS,
) -> StoredLogin:
    proxy = normal_url(proxy)
    pkce, state = generate_pkce(), generate_state()
    try:
        async with CallbackServer(port, CALLBACK_PATH, host="127.0.0.1") as server:
            redirect_uri = f"http://127.0.0.1:{server.port}{CALLBACK_PATH}"
            query = urlencode({"redirect_uri": redirect_uri, "state": state, "code_challenge": pkce.challenge})
            url = f"{proxy}/management.html#/cli-login?{query}"
            announce(f"Open this URL to sign in to {proxy}:\n\n  {url}\n")
            if open_url is not None:
                try:
                    await open_url(url)
                except Exception as exc:  # a missing browser must not end the login
                    announce(f"Could not open a browser ({exc}); open the URL above by hand, or use --device.")
            result = await server.wait(timeout)
    except OAuthError as exc:
        raise LoginFailed(str(exc)) from None
    if result.error:
        raise LoginFailed(f"the sign-in was refused: {result.error}")
    if result.state != state:
        raise LoginFailed("the callback's state does not match this sign-in")
    body = {"grant_type": "authorization_code", "code": result.code, "code_verifier": pkce.verifier}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        status, data = await _post(http, proxy + "/v0/account/cli/token", {**body, "redirect_uri": redirect_uri})
    if status != 200:
        raise LoginFailed(f"{status}: {data.get('error') or 'the proxy refused the sign-in'}")
    return _stored(proxy, data)


async def device_sign_in(proxy: str, *, announce: Announce, timeout: float = TIMEOUT_SECONDS) -> StoredLogin:
    proxy = normal_url(proxy)
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        status, device = await _post(http, proxy + "/v0/account/cli/device", {})
        if status != 200:
            raise LoginFailed(f"{status}: {device.get('error') or 'the proxy offers no device sign-in'}")
        grant = {"grant_type": "device_code", "device_code": _text(device, "device_code")}
        verification_uri, user_code = _text(device, "verification_uri"), _text(device, "user_code")
        interval = min(MAX_INTERVAL, max(1, int(_number(device, "interval") or 2)))
        deadline = time.monotonic() + min(timeout, _number(device, "expires_in") or timeout)
        announce(
            f"To sign in to {proxy}, open {verification_uri} on any device, sign in, and enter the code:"
            f"\n\n  {user_code}\n"
        )
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            status, data = await _post(http, proxy + "/v0/account/cli/token", grant)
            if status == 200:
                return _stored(proxy, data)
            if data.get("error") != "authorization_pending":
                raise LoginFailed(f"{status}: {data.get('error') or 'the proxy refused the sign-in'}")
    raise LoginFailed("timed out waiting for the code to be approved")


def proxy_url(args: argparse.Namespace) -> str:
    return str(getattr(args, "proxy", None) or os.environ.get("CLIPROXY_URL") or "")


def run_proxy_login(args: argparse.Namespace) -> int:
    """The `login` command without a provider name (or with `--proxy`)."""
    proxy = proxy_url(args)
    if not proxy:
        print(
            "error: which proxy? pass --proxy URL or set CLIPROXY_URL "
            "(or name a provider to log in to a subscription: cliproxy login claude)",
            file=sys.stderr,
        )
        return 2

    def announce(message: str) -> None:
        print(message, flush=True)

    try:
        if args.device:
            login = asyncio.run(device_sign_in(proxy, announce=announce))
        else:
            opener = None if args.no_browser else open_in_browser
            login = asyncio.run(browser_sign_in(proxy, announce=announce, open_url=opener, port=args.port or 0))
        path = save_login(login)
    except (LoginFailed, SecretFileError, OSError) as exc:
        print(f"error: sign-in to {proxy} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sign-in cancelled", file=sys.stderr)
        return 130
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(login.expires)) if login.expires else "never"
    team = f", team {login.team}" if login.team else ""
    print(f"Signed in to {proxy} as {login.user} ({login.role}{team}). The token expires {expires}; saved to {path}")
    return 0
