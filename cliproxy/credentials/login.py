"""Interactive logins (browser + PKCE, Codex device code) and how their result lands in auth-dir.

A login never clobbers what the user set by hand: when the target file already exists, its
non-token fields (prefix, priority, proxy_url, note, …) are kept and only the token fields are
replaced (spec §7.4 step 4).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from cliproxy.credentials.oauth import (
    CallbackResult,
    CallbackServer,
    OAuthError,
    generate_pkce,
    generate_state,
    parse_redirect_url,
)
from cliproxy.credentials.providers import ProviderSettings, claude, codex
from cliproxy.credentials.store import canonical_metadata, credential_path, write_credential_file

log = logging.getLogger(__name__)

TOKEN_FIELDS = frozenset(
    {"access_token", "refresh_token", "id_token", "expired", "last_refresh", "expires_in", "timestamp", "token_type"}
)
CALLBACK_TIMEOUT_SECONDS = 300.0
PASTE_PROMPT_AFTER_SECONDS = 15.0
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9@._+-]+")

Provider = Literal["claude", "codex"]
Announce = Callable[[str], None]


def filename_part(text: str) -> str:
    """Make an email/project/plan safe inside a file name (no separators, no `..`)."""
    cleaned = _UNSAFE_FILENAME_CHARS.sub("_", text.strip())
    while ".." in cleaned:
        cleaned = cleaned.replace("..", ".")
    return cleaned.strip(".") or "unknown"


def merge_relogin(existing: Mapping[str, Any] | None, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """`fresh` login data plus every non-token field of `existing` that the login did not set."""
    merged = dict(fresh)
    if existing:
        for key, value in canonical_metadata(existing).items():
            if key not in TOKEN_FIELDS and key not in merged:
                merged[key] = value
    return merged


def _save(auth_dir: Path, name: str, data: Mapping[str, Any]) -> Path:
    auth_dir.mkdir(parents=True, exist_ok=True)
    path = credential_path(auth_dir, name)
    existing: Any = None
    try:
        existing = json.loads(path.read_bytes())
    except FileNotFoundError:
        pass
    except ValueError:
        log.warning("%s exists but is not valid JSON; replacing it", name)
    write_credential_file(path, merge_relogin(existing if isinstance(existing, dict) else None, data))
    return path


async def save_login(auth_dir: Path, name: str, data: Mapping[str, Any]) -> Path:
    """Write a login's credential to `auth_dir/name` (atomic, 0600), merged with an existing file."""
    return await asyncio.to_thread(_save, auth_dir, name, data)


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
    provider: Provider,
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    ui: BrowserLogin,
) -> Path:
    """Authorization code + PKCE with a local callback server; returns the saved file's path."""
    pkce, state = generate_pkce(), generate_state()
    if provider == "claude":
        port, path = settings.claude.callback_port, settings.claude.callback_path
    else:
        port, path = settings.codex.callback_port, settings.codex.callback_path
    async with CallbackServer(ui.port if ui.port is not None else port, path, host=ui.host) as server:
        redirect_uri = server.redirect_uri
        if provider == "claude":
            url = claude.authorize_url(settings.claude, pkce=pkce, state=state, redirect_uri=redirect_uri)
        else:
            url = codex.authorize_url(settings.codex, pkce=pkce, state=state, redirect_uri=redirect_uri)
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
        expected_state=state, verifier=pkce.verifier, redirect_uri=redirect_uri,
    )  # fmt: skip


async def finish_code_login(
    provider: Provider,
    result: CallbackResult,
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    expected_state: str,
    verifier: str,
    redirect_uri: str,
) -> Path:
    """Check the callback, exchange the code, save the credential (CLI and management API share it)."""
    if result.error:
        raise OAuthError(f"the provider refused the login: {result.error}")
    if result.state != expected_state:
        raise OAuthError("State code error: the callback's state does not match this login")
    if not result.code:
        raise OAuthError("the callback carries no authorization code")
    if provider == "claude":
        tokens = await claude.exchange_code(
            session, settings.claude, code=result.code, state=expected_state, verifier=verifier,
            redirect_uri=redirect_uri,
        )  # fmt: skip
        data = claude.credential_json(tokens)
        name = claude.credential_filename(data)
    else:
        tokens = await codex.exchange_code(
            session, settings.codex, code=result.code, verifier=verifier, redirect_uri=redirect_uri
        )
        data = codex.credential_json(tokens)
        name = codex.credential_filename(data)
    path = await save_login(auth_dir, name, data)
    log.info("%s login saved to %s (%s)", provider, path.name, data.get("email") or "no email")
    return path


async def codex_device_login(
    *,
    session: aiohttp.ClientSession,
    settings: ProviderSettings,
    auth_dir: Path,
    announce: Announce = print,
    timeout: float = codex.DEVICE_TIMEOUT_SECONDS,
) -> Path:
    """Headless Codex login: show a code, poll until approved, save the credential."""
    device = await codex.request_device_code(session, settings.codex)
    announce(
        f"To log in to Codex, open {device.verification_url} on any device and enter the code:\n\n"
        f"  {device.user_code}\n\n(waiting up to {int(timeout // 60)} minutes)"
    )
    tokens = await codex.poll_device_code(session, settings.codex, device, timeout=timeout)
    data = codex.credential_json(tokens)
    path = await save_login(auth_dir, codex.credential_filename(data), data)
    log.info("codex device login saved to %s", path.name)
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
