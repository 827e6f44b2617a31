"""OAuth building blocks shared by the providers: PKCE, state, the local callback server, tokens.

Everything here is provider-neutral. The callback server is the CLI's landing page for the
browser redirect (`http://localhost:<port><path>`); the management API uses its own routes on the
main server and only shares `parse_redirect_url` and `validate_state`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from cliproxy.credentials.files import now_utc
from cliproxy.credentials.jwt import b64url_encode

log = logging.getLogger(__name__)

MAX_STATE_LENGTH = 128
_STATE_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
TOKEN_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)

SUCCESS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Authentication successful</title></head>
<body><h1>Authentication successful</h1><p>You can close this window and return to the terminal.</p>
<script>setTimeout(function () { window.close(); }, 5000);</script></body></html>
"""
FAILURE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Authentication failed</title></head>
<body><h1>Authentication failed</h1><p>Return to the terminal for details.</p></body></html>
"""


class OAuthError(Exception):
    """A login or refresh step failed; the message says which step and why (never a token)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PKCE:
    verifier: str
    challenge: str
    method: str = "S256"


def generate_pkce() -> PKCE:
    """RFC 7636 S256: a 128-character verifier and its SHA-256 challenge."""
    verifier = b64url_encode(secrets.token_bytes(96))
    return PKCE(verifier=verifier, challenge=pkce_challenge(verifier))


def pkce_challenge(verifier: str) -> str:
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def generate_state() -> str:
    """43 URL-safe characters: valid under `validate_state` and unguessable."""
    return secrets.token_urlsafe(32)


def validate_state(state: str) -> str:
    """A state also names a file (`.oauth-<provider>-<state>.oauth`), so it must be tame."""
    if not state:
        raise OAuthError("state is required")
    if len(state) > MAX_STATE_LENGTH or not _STATE_CHARS.match(state) or ".." in state:
        raise OAuthError("invalid state")
    return state


@dataclass(frozen=True)
class CallbackResult:
    """What the provider sent back to the redirect URI."""

    code: str = ""
    state: str = ""
    error: str = ""


def parse_redirect_url(text: str) -> CallbackResult:
    """Parse a pasted redirect URL (or a bare `code#state`, as Claude's page shows it).

    Claude may append `#<state>` to the code; the fragment is stripped from the code and used as
    the state when the query carries none.
    """
    text = text.strip()
    if not text:
        raise OAuthError("empty redirect URL")
    if "://" not in text and "?" not in text and "=" not in text:
        code, _, state = text.partition("#")
        return CallbackResult(code=code.strip(), state=state.strip())
    parts = urlsplit(text if "://" in text or text.startswith("?") else "?" + text)
    query = parse_qs(parts.query)

    def first(name: str) -> str:
        values = query.get(name)
        return values[0].strip() if values else ""

    code, state, fragment = first("code"), first("state"), parts.fragment.strip()
    if "#" in code:
        code, _, fragment = code.partition("#")
    error = first("error")
    description = first("error_description")
    if error and description:
        error = f"{error}: {description}"
    if not state and fragment and "=" not in fragment:
        state = fragment
    if not code and not error:
        raise OAuthError("the redirect URL carries neither code nor error")
    return CallbackResult(code=code, state=state, error=error)


@dataclass(frozen=True)
class TokenSet:
    """A token endpoint's answer, with the raw JSON kept for provider-specific fields."""

    access_token: str
    refresh_token: str = ""
    id_token: str = ""
    token_type: str = ""
    expires_in: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    received_at: datetime = field(default_factory=now_utc)

    @property
    def expires_at(self) -> datetime | None:
        if self.expires_in is None:
            return None
        return self.received_at + timedelta(seconds=self.expires_in)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet:
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError("token response has no access_token")
        expires_in = data.get("expires_in")
        try:
            expires = int(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            expires = None
        return cls(
            access_token=access,
            refresh_token=str(data.get("refresh_token") or ""),
            id_token=str(data.get("id_token") or ""),
            token_type=str(data.get("token_type") or ""),
            expires_in=expires,
            raw=dict(data),
        )


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to approve a headless login, and what we poll with."""

    device_auth_id: str
    user_code: str
    verification_url: str
    interval: float
    expires_in: float | None = None  # how long the code is valid, when the provider says
    context: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # what the poll needs of the start: a discovered token URL, the device id a login was begun with


def overrides_from_env(env: Mapping[str, str], names: Mapping[str, str]) -> dict[str, Any]:
    """{field: value} for each `names[field]` environment variable that is set and non-empty.

    Fields named `*_port` are converted to int, `*_seconds` to float (a bad value raises ValueError
    naming the variable).
    """
    out: dict[str, Any] = {}
    for attr, var in names.items():
        value = env.get(var, "").strip()
        if not value:
            continue
        if attr.endswith("_port"):
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ValueError(f"{var}: not a port number: {value!r}")
            out[attr] = int(value)
        elif attr.endswith("_seconds"):
            try:
                out[attr] = float(value)
            except ValueError:
                raise ValueError(f"{var}: not a number of seconds: {value!r}") from None
        else:
            out[attr] = value
    return out


def mask_secret(value: str) -> str:
    """`abc…wxyz`-style hint for logs: never more than the last four characters."""
    return f"…{value[-4:]}" if len(value) > 8 else "…"


def proxy_for(proxy_url: str) -> str | None:
    """aiohttp's `proxy=` argument for a credential's http(s) proxy_url (socks needs a connector)."""
    if proxy_url.lower().startswith(("http://", "https://")):
        return proxy_url
    return None


async def post_token_request(
    session: aiohttp.ClientSession,
    url: str,
    *,
    json_body: Mapping[str, Any] | None = None,
    form: Mapping[str, str] | None = None,
    step: str,
    proxy_url: str = "",
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST to a token endpoint and return its JSON; errors name the step and the HTTP status."""
    request_headers = {"Accept": "application/json", **(headers or {})}
    try:
        async with session.post(
            url,
            json=dict(json_body) if json_body is not None else None,
            data=dict(form) if form is not None else None,
            headers=request_headers,
            proxy=proxy_for(proxy_url),
            timeout=TOKEN_REQUEST_TIMEOUT,
        ) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise OAuthError(f"{step} failed: HTTP {resp.status}: {_error_text(body)}", status=resp.status)
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                raise OAuthError(f"{step} failed: the response is not JSON", status=resp.status) from None
    except aiohttp.ClientError as exc:
        raise OAuthError(f"{step} failed: {exc.__class__.__name__}: {exc}") from None
    except TimeoutError:
        raise OAuthError(f"{step} failed: timed out") from None
    if not isinstance(data, dict):
        raise OAuthError(f"{step} failed: the response is not a JSON object")
    return data


def _error_text(body: bytes) -> str:
    """A short, token-free summary of an error body (OAuth error fields only)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message") or error.get("type") or error.get("code")
        description = data.get("error_description") or data.get("message") or ""
        text = " ".join(str(x) for x in (error, description) if x)
        return text[:300] or "error"
    return "error"


async def open_in_browser(url: str) -> None:
    """Open `url` in the user's browser (off the event loop: `webbrowser` may start a process);
    OSError when there is none, so the caller can say to open the printed URL by hand."""
    if not await asyncio.to_thread(webbrowser.open, url):
        raise OSError("no browser available")


class CallbackServer:
    """A throwaway HTTP server on `localhost:<port>` that receives one OAuth redirect.

    Use as `async with CallbackServer(port, "/callback") as server: result = await server.wait(300)`.
    Only `path` is answered; the first request carrying `code` or `error` completes the wait.
    """

    def __init__(self, port: int, path: str, *, host: str = "localhost") -> None:
        self.port = port
        self.path = path
        self.host = host
        self._result: asyncio.Future[CallbackResult] | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> CallbackServer:
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OAuthError(
                f"cannot listen on {self.host}:{self.port} for the OAuth callback ({exc.strerror or exc}); "
                "free the port or pass --port"
            ) from None
        if self.port == 0:  # an ephemeral port (tests): learn which one we got
            self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self.port}{self.path}"

    def deliver(self, result: CallbackResult) -> None:
        """Complete the wait from elsewhere (the pasted redirect URL)."""
        if self._result is not None and not self._result.done():
            self._result.set_result(result)

    async def wait(self, timeout: float) -> CallbackResult:
        assert self._result is not None, "use CallbackServer as an async context manager"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise OAuthError("Timeout waiting for OAuth callback") from None

    async def _handle(self, request: web.Request) -> web.Response:
        query = request.query
        code, error = query.get("code", ""), query.get("error", "")
        if not code and not error:
            return web.Response(status=400, text="missing code")
        if error and query.get("error_description"):
            error = f"{error}: {query['error_description']}"
        code, _, fragment = code.partition("#")
        self.deliver(CallbackResult(code=code, state=query.get("state", "") or fragment, error=error))
        page = FAILURE_PAGE if error else SUCCESS_PAGE
        return web.Response(text=page, content_type="text/html")
