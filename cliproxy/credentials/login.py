"""Interactive logins (browser + PKCE, device code) and how their result lands in auth-dir.

Which providers offer which login, and their endpoints, is the provider registry's business
(`AuthFileKind.code_login`, `device_login`); the flows here are shared. A login never clobbers
what the user set by hand: as CLIProxyAPI does, when the target file already exists its
non-token fields (prefix, priority, proxy_url, note, …) are kept and only the token fields are
replaced, in one read-modify-write through `CredentialStore`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from cliproxy.credentials.files import canonical_metadata, credential_path
from cliproxy.credentials.kinds import AuthFileKind, CodeLogin, DeviceLogin
from cliproxy.credentials.oauth import (
    CallbackResult,
    CallbackServer,
    OAuthError,
    TokenSet,
    generate_pkce,
    generate_state,
    parse_redirect_url,
)
from cliproxy.credentials.registry import BUILTIN, ProviderSettings
from cliproxy.credentials.store import CredentialStore

log = logging.getLogger(__name__)

TOKEN_FIELDS = frozenset(
    {"access_token", "refresh_token", "id_token", "expired", "last_refresh", "expires_in", "timestamp", "token_type"}
)
CALLBACK_TIMEOUT_SECONDS = 300.0
PASTE_PROMPT_AFTER_SECONDS = 15.0

Announce = Callable[[str], None]


def merge_relogin(existing: Mapping[str, Any] | None, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """`fresh` login data plus every non-token field of `existing` that the login did not set."""
    merged = dict(fresh)
    if existing:
        for key, value in canonical_metadata(existing).items():
            if key not in TOKEN_FIELDS and key not in merged:
                merged[key] = value
    return merged


async def save_login(
    auth_dir: Path, name: str, data: Mapping[str, Any], *, store: CredentialStore | None = None
) -> Path:
    """Write a login's credential to `auth_dir/name` (atomic, 0600), merged with an existing file."""
    store = store if store is not None else CredentialStore()
    path = credential_path(auth_dir, name)
    await store.put(path, lambda existing: merge_relogin(existing, data))
    return path


def login_kind(cred_type: str, store: CredentialStore | None) -> AuthFileKind[Any]:
    kind = (store.registry if store is not None else BUILTIN).auth_file(cred_type)
    if kind is None:
        raise OAuthError(f"no provider serves credential type {cred_type!r}")
    return kind


def code_login_of(kind: AuthFileKind[Any]) -> CodeLogin[Any]:
    if kind.code_login is None:
        raise OAuthError(f"{kind.type} has no browser login")
    return kind.code_login


async def save_tokens(
    kind: AuthFileKind[Any], tokens: TokenSet, auth_dir: Path, store: CredentialStore | None
) -> tuple[Path, Mapping[str, Any]]:
    """The login's credential file, built by its provider and saved (re-login keeps user fields)."""
    if kind.credential_json is None:
        raise OAuthError(f"{kind.type} logins do not produce a credential file")
    data = kind.credential_json(tokens)
    return await save_login(auth_dir, kind.credential_filename(data), data, store=store), data


@dataclass(frozen=True)
class BrowserLogin:
    """How an interactive browser login talks to the user.

    `open_url` opens the authorize URL (None: `--no-browser`, only print it). `read_pasted`, when
    given, is started after `paste_after` seconds and may return the redirect URL the user pasted.
    """

    announce: Announce = print
    open_url: Callable[[str], Awaitable[None]] | None = None
    read_pasted: Callable[[], Awaitable[str]] | None = None
    port: int | None = None
    timeout: float = CALLBACK_TIMEOUT_SECONDS
    paste_after: float = PASTE_PROMPT_AFTER_SECONDS
    host: str = "localhost"


async def _paste_into(server: CallbackServer, ui: BrowserLogin) -> None:
    assert ui.read_pasted is not None
    await asyncio.sleep(ui.paste_after)
    ui.announce("If the browser is on another machine, paste the full redirect URL here and press Enter:")
    while True:
        text = await ui.read_pasted()
        if not text.strip():
            continue
        try:
            server.deliver(parse_redirect_url(text))
            return
        except OAuthError as exc:
            ui.announce(f"That does not look like the redirect URL ({exc}); try again:")


async def browser_login(
    provider: str,
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    ui: BrowserLogin,
    store: CredentialStore | None = None,
) -> Path:
    """Authorization code + PKCE with a local callback server; returns the saved file's path."""
    kind = login_kind(provider, store)
    login = code_login_of(kind)
    own = settings.of(kind)
    pkce, state = generate_pkce(), generate_state()
    port, path = login.callback(own)
    async with CallbackServer(ui.port if ui.port is not None else port, path, host=ui.host) as server:
        redirect_uri = server.redirect_uri
        url = login.authorize_url(own, pkce, state, redirect_uri)
        ui.announce(f"Open this URL to log in to {provider}:\n\n  {url}\n")
        if ui.open_url is not None:
            try:
                await ui.open_url(url)
            except Exception as exc:  # a missing browser must not end the login
                ui.announce(f"Could not open a browser ({exc}); open the URL above by hand.")
        paster = asyncio.create_task(_paste_into(server, ui)) if ui.read_pasted is not None else None
        try:
            result = await server.wait(ui.timeout)
        finally:
            if paster is not None:
                paster.cancel()
    return await finish_code_login(
        provider, result, session=session, settings=settings, auth_dir=auth_dir,
        expected_state=state, verifier=pkce.verifier, redirect_uri=redirect_uri, store=store,
    )  # fmt: skip


async def finish_code_login(
    provider: str,
    result: CallbackResult,
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    expected_state: str,
    verifier: str,
    redirect_uri: str,
    store: CredentialStore | None = None,
) -> Path:
    """Check the callback, exchange the code, save the credential (CLI and management API share it)."""
    if result.error:
        raise OAuthError(f"the provider refused the login: {result.error}")
    if result.state != expected_state:
        raise OAuthError("State code error: the callback's state does not match this login")
    if not result.code:
        raise OAuthError("the callback carries no authorization code")
    kind = login_kind(provider, store)
    own = settings.of(kind)
    tokens = await code_login_of(kind).exchange(session, own, result.code, expected_state, verifier, redirect_uri)
    path, data = await save_tokens(kind, tokens, auth_dir, store)
    log.info("%s login saved to %s (%s)", provider, path.name, data.get("email") or "no email")
    return path


async def device_login(
    provider: str,
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    announce: Announce = print,
    timeout: float | None = None,
    store: CredentialStore | None = None,
) -> Path:
    """Headless login: show a code, poll until approved, save the credential."""
    kind = login_kind(provider, store)
    flow: DeviceLogin[Any] | None = kind.device_login
    if flow is None:
        raise OAuthError(f"{provider} has no device-code login")
    own = settings.of(kind)
    limit = flow.timeout_seconds if timeout is None else timeout
    device = await flow.start(session, own)
    announce(
        f"To log in to {provider}, open {device.verification_url} on any device and enter the code:\n\n"
        f"  {device.user_code}\n\n(waiting up to {int(limit // 60)} minutes)"
    )
    tokens = await flow.poll(session, own, device, limit)
    path, _ = await save_tokens(kind, tokens, auth_dir, store)
    log.info("%s device login saved to %s", provider, path.name)
    return path


def stdin_line_reader() -> Callable[[], Awaitable[str]]:
    """Read stdin lines without blocking the loop or keeping the process alive at exit.

    A daemon thread (not `to_thread`, whose pool is joined at shutdown) feeds a queue.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, "")

    threading.Thread(target=pump, name="stdin-reader", daemon=True).start()
    return queue.get
