"""The credentials service of a running server: token-endpoint session, refresher, minted tokens.

The composition root builds one `CredentialService` with what it needs (the provider registry's
settings, the `CredentialStore`, a view of the current auth-dir credentials, a callback that
reloads the runtime) and runs it between `start()` and `stop()`. It binds itself to every
auth-file executor of each runtime snapshot (`bind`, and `on_swap` as the runtime holder's swap
listener), so executors get their tokens here: refreshed ones from the `CredentialRefresher`,
minted ones (service-account keys) from a `MintedTokens` cache per provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import aiohttp

from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, format_time, now_utc
from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.locks import KeyedLocks, LockSpace
from cliproxy.credentials.minted import MintedTokens
from cliproxy.credentials.oauth import OAuthError
from cliproxy.credentials.refresh import CredentialRefresher
from cliproxy.credentials.registry import ProviderRegistry, ProviderSettings
from cliproxy.credentials.store import CredentialStore
from cliproxy.credentials.token_share import TokenShare

log = logging.getLogger(__name__)

TOKEN_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)


class _Routable(Protocol):
    @property
    def executor(self) -> object: ...


class _Catalog(Protocol):
    @property
    def credentials(self) -> Sequence[_Routable]: ...


class Snapshot(Protocol):
    """What `on_swap` needs of a runtime snapshot: its routable credentials."""

    @property
    def catalog(self) -> _Catalog: ...


def bind_executors(credentials: Iterable[_Routable], tokens: CredentialService) -> int:
    """Attach `tokens` to every auth-file executor among `credentials`; returns how many."""
    count = 0
    for cred in credentials:
        executor = cred.executor
        if isinstance(executor, AuthFileExecutor):
            executor.bind(tokens)
            count += 1
    return count


class CredentialService:
    """Token plumbing for one server; usable between `start()` and `stop()` (`started`)."""

    def __init__(
        self,
        *,
        store: CredentialStore,
        settings: ProviderSettings | None = None,
        auth_files: Callable[[], Iterable[Any]] = tuple,
        on_changed: Callable[[], Awaitable[object]] | None = None,
        refresh_locks: LockSpace | None = None,
        token_share: TokenShare | None = None,
        on_refresh: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.registry: ProviderRegistry = store.registry
        self.settings = settings if settings is not None else ProviderSettings.from_env(registry=store.registry)
        self._auth_files = auth_files
        self._on_changed = on_changed
        self._refresh_locks = refresh_locks if refresh_locks is not None else KeyedLocks()
        self._token_share = token_share  # refreshed tokens for processes on other hosts
        self._on_refresh = on_refresh  # (credential type, outcome) after each refresh, for the metrics
        self._session: aiohttp.ClientSession | None = None
        self._owns_session = False
        self._refresher: CredentialRefresher | None = None
        self._minted: dict[str, MintedTokens] = {}
        self._scheduler: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[object]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._session is not None

    async def start(self, session: aiohttp.ClientSession | None = None) -> None:
        """Open the token-endpoint session (or use `session`) and run the refresh scheduler."""
        self._session = session or aiohttp.ClientSession(timeout=TOKEN_SESSION_TIMEOUT, trust_env=True)
        self._owns_session = session is None
        self._refresher = CredentialRefresher(
            self._session,
            self.settings,
            store=self.store,
            locks=self._refresh_locks,
            share=self._token_share,
            on_refreshed=lambda _cred: self.changed(),
            on_outcome=self._on_refresh,
        )
        self._scheduler = asyncio.create_task(self._refresher.run(self.auth_dir_credentials), name="cliproxy-refresh")

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            self._scheduler = None
        for pending in list(self._pending):
            pending.cancel()
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
        self._minted.clear()

    async def __aenter__(self) -> CredentialService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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

    # ------------------------------------------------------------------ runtime hooks

    def bind(self, snapshot: Snapshot) -> int:
        """Give every auth-file executor of `snapshot` its tokens from here."""
        return bind_executors(snapshot.catalog.credentials, self)

    def on_swap(self, old: Snapshot, new: Snapshot) -> None:
        """The runtime holder's swap listener: runs before any request can use `new`."""
        self.bind(new)
        if self._refresher is not None:
            self._refresher.wake()

    def auth_dir_credentials(self) -> list[AuthFileCredential]:
        return [c for c in self._auth_files() if isinstance(c, AuthFileCredential)]

    async def register(self) -> None:
        """Register a changed credential now and wait until it is live (a login that reports success
        must be usable at once)."""
        if self._on_changed is not None:
            await self._on_changed()

    def changed(self) -> None:
        """Register a changed credential at once instead of waiting for the file watcher."""
        if self._on_changed is None:
            return
        task: asyncio.Task[object] = asyncio.ensure_future(self._on_changed())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------------ tokens

    def _kind(self, cred: AuthFileCredential) -> AuthFileKind[Any]:
        kind = self.registry.auth_file(cred.type)
        if kind is None:
            raise OAuthError(f"{cred.id}: no provider serves credential type {cred.type!r}")
        return kind

    def _minter(self, kind: AuthFileKind[Any]) -> MintedTokens:
        minted = self._minted.get(kind.type)
        if minted is None:
            if kind.mint is None:
                raise OAuthError(f"{kind.type} credentials do not mint tokens")
            minted = self._minted[kind.type] = MintedTokens(
                functools.partial(kind.mint, self.session, self.settings.of(kind))
            )
        return minted

    async def access_token(self, cred: AuthFileCredential, *, force_refresh: bool = False) -> str:
        """The token to send upstream for `cred`; `force_refresh` after the upstream said 401."""
        kind = self._kind(cred)
        if kind.mint is not None:
            minted = self._minter(kind)
            if force_refresh:
                minted.invalidate(cred)
            return await minted.token(cred)
        if force_refresh:
            # Relative to the snapshot's credential: if a refresh already replaced its token, the
            # refresher hands back the newer one without another (single-use) token request.
            return (await self.refresher.refresh_now(cred)).access_token
        current = self.refresher.current(cred)
        expired = current.expires_at is not None and current.expires_at <= now_utc()
        if current.refresh_token and (expired or not current.access_token):
            current = await self.refresher.refresh_now(current)
        return current.access_token

    def current(self, cred: AuthFileCredential) -> AuthFileCredential:
        return cred if self._refresher is None else self._refresher.current(cred)

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
