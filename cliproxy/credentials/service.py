"""The credentials service of a running server: token-endpoint session, refresher, vertex tokens.

`start` opens the HTTP session used for token endpoints and runs the refresh scheduler over the
auth-dir credentials it is given; `on_swap` (a runtime swap listener) binds the new snapshot's
executors and wakes the scheduler; `stop` closes all. Upstream executors of OAuth and
service-account credentials get their tokens here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from cliproxy.credentials.executors import bind_executors
from cliproxy.credentials.oauth import OAuthError
from cliproxy.credentials.providers import ProviderSettings
from cliproxy.credentials.providers.vertex import VertexTokenSource
from cliproxy.credentials.refresh import CredentialRefresher
from cliproxy.credentials.store import AuthFileCredential, format_time, now_utc
from cliproxy.runtime import Runtime

log = logging.getLogger(__name__)

TOKEN_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)


class CredentialService:
    """Token plumbing for one server; usable between `start` and `stop`."""

    def __init__(
        self,
        *,
        auth_files: Callable[[], Sequence[object]],
        on_changed: Callable[[], None],
        settings: ProviderSettings | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ProviderSettings.from_env()
        self._auth_files = auth_files  # the auth-dir credentials of the current snapshot
        self._on_changed = on_changed  # a credential file was rewritten: reload now
        self._session: aiohttp.ClientSession | None = None
        self._refresher: CredentialRefresher | None = None
        self._vertex: VertexTokenSource | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise OAuthError("the credentials service is not running")
        return self._session

    @property
    def refresher(self) -> CredentialRefresher:
        if self._refresher is None:
            raise OAuthError("the credentials service is not running")
        return self._refresher

    @property
    def vertex_tokens(self) -> VertexTokenSource:
        if self._vertex is None:
            raise OAuthError("the credentials service is not running")
        return self._vertex

    async def access_token(self, cred: AuthFileCredential, *, force_refresh: bool = False) -> str:
        """The token to send upstream for `cred`; `force_refresh` after the upstream said 401."""
        if cred.type == "vertex":
            if force_refresh:
                self.vertex_tokens.invalidate(cred)
            return await self.vertex_tokens.token(cred)
        if force_refresh:
            # Relative to the snapshot's credential: if a refresh already replaced its token, the
            # refresher hands back the newer one without another (single-use) token request.
            return (await self.refresher.refresh_now(cred)).access_token
        current = self.refresher.current(cred)
        expired = current.expires_at is not None and current.expires_at <= now_utc()
        if current.refresh_token and (expired or not current.access_token):
            current = await self.refresher.refresh_now(current)
        return current.access_token

    def refresh_view(self, cred: AuthFileCredential) -> dict[str, Any]:
        """`auth-files` entry fields from the refresh bookkeeping: failures must be visible."""
        status = self._refresher.statuses().get(cred.id) if self._refresher is not None else None
        if status is None:
            return {}
        view: dict[str, Any] = {"refresh": status.as_dict()}
        if status.next_retry is not None:
            view["next_retry_after"] = format_time(status.next_retry)
        if status.last_refresh is not None:
            view["last_refresh"] = format_time(status.last_refresh)
        if status.last_error and not cred.disabled:
            view["status"] = "error"
            view["status_message"] = f"token refresh failed: {status.last_error}"
        return view

    def auth_dir_credentials(self) -> list[AuthFileCredential]:
        return [c for c in self._auth_files() if isinstance(c, AuthFileCredential)]

    def request_reload(self) -> None:
        """Register a changed credential at once instead of waiting for the file watcher."""
        self._on_changed()

    def on_swap(self, old: Runtime, new: Runtime) -> None:
        """Runtime swap listener: runs before any request can use the new snapshot."""
        bind_executors(new, self)
        if self._refresher is not None:
            self._refresher.wake()

    async def start(self) -> None:
        """Open the token-endpoint session and start the refresh scheduler."""
        self._session = aiohttp.ClientSession(timeout=TOKEN_SESSION_TIMEOUT, trust_env=True)
        self._refresher = CredentialRefresher(
            self._session, self.settings, on_refreshed=lambda _cred: self.request_reload()
        )
        self._vertex = VertexTokenSource(self._session, self.settings.vertex)
        self._task = asyncio.create_task(self._refresher.run(self.auth_dir_credentials), name="cliproxy-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
