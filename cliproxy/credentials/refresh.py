"""Keeping OAuth credentials fresh: a background scheduler plus refresh-on-401, one flight at a time.

Refresh tokens are single-use, so two refreshes of the same credential racing each other would
log the user out: every refresh goes through `CredentialRefresher.refresh_now`, which joins an
in-flight refresh for the same credential id instead of starting a second one, and which answers
a caller holding an already-replaced token with the newer credential without any request.

The network call is made under the credential's refresh lock (a `LockSpace`: in-process now,
replaceable by a shared one so that several processes never spend one refresh token twice), but
never under the file's lock: the new tokens are merged into the file as it is when they arrive,
through `CredentialStore`, so a change made meanwhile (a management `disabled` toggle) survives.

Failures are recorded on a per-credential `RefreshStatus` (shown by the management API), logged,
and retried after a backoff; nothing fails silently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from cliproxy.credentials.files import (
    AuthFileCredential,
    CredentialFileError,
    canonical_metadata,
    credential_type,
    format_time,
    now_utc,
)
from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.locks import KeyedLocks, LockSpace
from cliproxy.credentials.oauth import OAuthError, TokenSet
from cliproxy.credentials.registry import ProviderSettings
from cliproxy.credentials.store import CredentialStore, UnreadableFile
from cliproxy.credentials.token_share import TokenShare, shared_tokens, tokens_of

log = logging.getLogger(__name__)

FAILURE_BACKOFF = timedelta(minutes=5)
STILL_DUE_RETRY = timedelta(seconds=30)
IDLE_RECHECK = timedelta(minutes=1)
DEFAULT_WORKERS = 16
# Token-endpoint answers that mean "this refresh token is dead": stop automatic retries.
DEAD_TOKEN_STATUSES = frozenset({400, 401, 403})


class RefreshError(OAuthError):
    """A refresh failed; `RefreshStatus.last_error` holds the same message."""


@dataclass
class RefreshStatus:
    """Mutable refresh bookkeeping for one credential id (survives snapshot swaps)."""

    last_refresh: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str = ""
    last_error_status: int | None = None
    next_retry: datetime | None = None
    failures: int = 0
    refreshes: int = 0

    @property
    def dead(self) -> bool:
        """The token endpoint rejected the refresh token: only a login (or manual refresh) helps."""
        return self.last_error_status in DEAD_TOKEN_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_refresh": format_time(self.last_refresh) if self.last_refresh else None,
            "last_attempt": format_time(self.last_attempt) if self.last_attempt else None,
            "last_error": self.last_error or None,
            "next_retry_after": format_time(self.next_retry) if self.next_retry else None,
            "failures": self.failures,
            "refreshes": self.refreshes,
        }


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialRefresher:
    """Refreshes credentials with refresh tokens: on demand (`refresh_now`) and on schedule (`run`).

    Which credentials refresh, how early and against which endpoint is their provider's registry
    entry (`AuthFileKind.refresh`, `refresh_lead`), found through the store's registry.
    `on_refreshed` is called with each new credential so the owner can put it into the live
    runtime at once instead of waiting for the auth-dir watcher; `on_outcome` with the credential
    type and `ok`, `error` or `rejected` (the token endpoint refused the refresh token) after every
    refresh (the metrics count them).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ProviderSettings,
        *,
        store: CredentialStore | None = None,
        locks: LockSpace | None = None,
        share: TokenShare | None = None,
        on_refreshed: Callable[[AuthFileCredential], None] | None = None,
        on_outcome: Callable[[str, str], None] | None = None,
        workers: int = DEFAULT_WORKERS,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._session = session
        self._settings = settings
        self._store = store if store is not None else CredentialStore()
        self._locks: LockSpace = locks if locks is not None else KeyedLocks()
        self._share = share
        self._on_refreshed = on_refreshed
        self._on_outcome = on_outcome
        self._clock = clock
        self._workers = asyncio.Semaphore(max(1, workers))
        self._statuses: dict[str, RefreshStatus] = {}
        self._inflight: dict[str, asyncio.Task[AuthFileCredential]] = {}
        self._latest: dict[str, AuthFileCredential] = {}
        self._replaced: dict[str, set[str]] = {}
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ queries

    def status(self, cred_id: str) -> RefreshStatus:
        return self._statuses.setdefault(cred_id, RefreshStatus())

    def statuses(self) -> Mapping[str, RefreshStatus]:
        return self._statuses

    def current(self, cred: AuthFileCredential) -> AuthFileCredential:
        """`cred`, or the newer credential a refresh produced if `cred` holds a replaced token."""
        latest = self._latest.get(cred.id)
        if latest is not None and _token_hash(cred.access_token) in self._replaced.get(cred.id, ()):
            return latest
        return cred

    def due_at(self, cred: AuthFileCredential) -> datetime | None:
        """When the scheduler should refresh `cred`; None for never (no refresh flow, dead tokens)."""
        kind = self._refreshable(cred)
        lead = kind.refresh_lead if kind is not None else None
        if lead is None or cred.disabled or not cred.refresh_token:
            return None
        status = self.status(cred.id)
        if status.dead:
            return None
        candidates: list[datetime] = []
        if cred.expires_at is not None:
            candidates.append(cred.expires_at - lead)
        if cred.refresh_interval_seconds and cred.refresh_interval_seconds > 0:
            base = cred.last_refresh or status.last_refresh
            candidates.append(base + timedelta(seconds=cred.refresh_interval_seconds) if base else self._clock())
        if not candidates:
            return None
        due = min(candidates)
        if status.next_retry is not None and status.next_retry > due:
            due = status.next_retry
        return due

    # ------------------------------------------------------------------ refresh

    async def refresh_now(self, cred: AuthFileCredential) -> AuthFileCredential:
        """Refresh `cred` once (joining a refresh already in flight) and return the new credential.

        Used on a 401 at request time: the caller retries once with the returned credential.
        """
        current = self.current(cred)
        if current is not cred:
            return current
        task = self._inflight.get(cred.id)
        if task is None:
            task = asyncio.create_task(self._refresh(cred), name=f"refresh:{cred.id}")
            self._inflight[cred.id] = task
            task.add_done_callback(functools.partial(self._forget, cred.id))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[AuthFileCredential]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: failures are already recorded and logged

    def _refreshable(self, cred: AuthFileCredential) -> AuthFileKind[Any] | None:
        kind = self._store.registry.auth_file(cred.type)
        return kind if kind is not None and kind.refresh is not None else None

    async def _refresh(self, cred: AuthFileCredential) -> AuthFileCredential:
        status = self.status(cred.id)
        status.last_attempt = self._clock()
        try:
            fresh = await self._exchange(cred)
        except (OAuthError, OSError, CredentialFileError) as exc:
            message = str(exc) if isinstance(exc, OAuthError) else f"{exc.__class__.__name__}: {exc}"
            status.last_error = message
            status.last_error_status = exc.status if isinstance(exc, OAuthError) else None
            status.failures += 1
            status.next_retry = self._clock() + FAILURE_BACKOFF
            log.warning(
                "refresh of %s (%s) failed: %s; %s",
                cred.id,
                cred.type,
                message,
                "log in again" if status.dead else f"retrying after {format_time(status.next_retry)}",
            )
            self._report(cred, "rejected" if status.dead else "error")
            raise RefreshError(message, status=status.last_error_status) from None
        status.last_refresh = fresh.last_refresh or self._clock()
        status.last_error, status.last_error_status, status.failures = "", None, 0
        status.next_retry = None
        status.refreshes += 1
        due = self.due_at(fresh)
        if due is not None and due <= self._clock():
            status.next_retry = self._clock() + STILL_DUE_RETRY
            log.warning("refresh of %s succeeded but the new token is still due; retrying in 30 s", cred.id)
        self._replaced.setdefault(cred.id, set()).add(_token_hash(cred.access_token))
        self._latest[cred.id] = fresh
        log.info(
            "refreshed %s (%s); expires %s", cred.id, cred.type, fresh.expires_at and format_time(fresh.expires_at)
        )
        self._report(cred, "ok")
        if self._on_refreshed is not None:
            try:
                self._on_refreshed(fresh)
            except Exception:
                log.exception("on_refreshed hook failed for %s", cred.id)
        return fresh

    def _report(self, cred: AuthFileCredential, outcome: str) -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(cred.type, outcome)
            except Exception:
                log.exception("on_outcome hook failed for %s", cred.id)

    async def _exchange(self, cred: AuthFileCredential) -> AuthFileCredential:
        """Spend the refresh token, then merge the new tokens into the file as it is by then."""
        kind = self._refreshable(cred)
        if kind is None or kind.refresh is None:
            raise OAuthError(f"{cred.type} credentials are not refreshed with a refresh token")
        async with self._workers, self._locks.hold(cred.id):
            metadata = await self._metadata(cred)
            elsewhere = self._refreshed_elsewhere(cred, metadata)
            if elsewhere is None and self._share is not None:
                elsewhere = await self._shared_by_peer(cred, kind, metadata)
            if elsewhere is not None:
                return elsewhere
            tokens = await kind.refresh(self._session, self._settings.of(kind), metadata, cred.proxy_url)
            if self._share is not None:
                await self._share.publish(cred.id, shared_tokens(cred.type, tokens))
            merge = _merger(cred, kind, metadata, tokens)
            try:
                try:
                    fresh = await self._store.put(cred.path, merge, create=False)
                except CredentialFileError as exc:
                    # The refresh token is spent: never lose the new one to a bad edit made meanwhile.
                    log.warning("%s was edited into an invalid file (%s); writing the refresh over it", cred.id, exc)
                    fresh = await self._store.put(
                        cred.path, lambda _: kind.merge_tokens(metadata, tokens), create=False
                    )
            except FileNotFoundError:
                raise CredentialFileError("the credential file was removed while it was refreshed") from None
        return dataclasses.replace(fresh, id=cred.id)

    def _refreshed_elsewhere(self, cred: AuthFileCredential, metadata: dict[str, Any]) -> AuthFileCredential | None:
        """The file's credential when another process refreshed it while this one waited for the lock
        (a new access token that is not due yet): taken as it is, the refresh token is not spent twice."""
        try:
            on_disk = self._store.parse(metadata, cred.path)
        except CredentialFileError:
            return None
        if not on_disk.access_token or on_disk.access_token == cred.access_token:
            return None
        due = self.due_at(on_disk)
        if due is not None and due <= self._clock():
            return None
        log.info("%s was refreshed by another process; using its new token", cred.id)
        return dataclasses.replace(on_disk, id=cred.id)

    async def _shared_by_peer(
        self, cred: AuthFileCredential, kind: AuthFileKind[Any], metadata: dict[str, Any]
    ) -> AuthFileCredential | None:
        """The tokens another host refreshed and shared, merged into this host's file as this host's
        own refresh would merge them (its local fields stay)."""
        assert self._share is not None
        tokens = tokens_of(await self._share.latest(cred.id), cred.type)
        if tokens is None:
            return None
        if self._refreshed_elsewhere(cred, kind.merge_tokens(metadata, tokens)) is None:
            return None
        fresh = await self._store.put(cred.path, _merger(cred, kind, metadata, tokens), create=False)
        log.info("%s was refreshed on another host; took its new token from shared state", cred.id)
        return dataclasses.replace(fresh, id=cred.id)

    async def _metadata(self, cred: AuthFileCredential) -> dict[str, Any]:
        """The file as it is now (another process may have refreshed it); the snapshot's copy if unreadable.

        A file that is gone was deleted by the user: refreshing it would bring it back, so that raises.
        """
        try:
            data = await self._store.read(cred.path)
        except FileNotFoundError:
            raise CredentialFileError("the credential file was removed; not refreshing it") from None
        except UnreadableFile:
            return cred.metadata_dict()
        if credential_type(data) != cred.type:
            return cred.metadata_dict()
        return canonical_metadata(data)

    # ------------------------------------------------------------------ scheduler

    def wake(self) -> None:
        """Recompute the schedule now (call after the credential set changed)."""
        self._wake.set()

    async def run(self, credentials: Callable[[], Iterable[AuthFileCredential]]) -> None:
        """Refresh every due credential, forever. `credentials()` returns the current set."""
        while True:
            try:
                await self._pass(credentials)
            except asyncio.CancelledError:
                raise
            except Exception:  # the scheduler must outlive any one bad pass
                log.exception("refresh scheduler pass failed; retrying in %s", IDLE_RECHECK)
                await asyncio.sleep(IDLE_RECHECK.total_seconds())

    async def _pass(self, credentials: Callable[[], Iterable[AuthFileCredential]]) -> None:
        """Refresh what is due now, or sleep until the next due time (or a `wake`)."""
        while True:
            now = self._clock()
            wake_at = now + IDLE_RECHECK
            due: list[AuthFileCredential] = []
            for cred in credentials():
                cred = self.current(cred)
                when = self.due_at(cred)
                if when is None or cred.id in self._inflight:
                    continue
                if when <= now:
                    due.append(cred)
                else:
                    wake_at = min(wake_at, when)
            if due:
                results = await asyncio.gather(*(self.refresh_now(c) for c in due), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(result, Exception):
                        raise result
                continue
            self._wake.clear()
            # `asyncio.timeout`, not `wait_for`: on 3.11 `wait_for` swallows a cancel that arrives just
            # after the event fired, and then shutdown waits for this loop forever.
            try:
                async with asyncio.timeout(max((wake_at - now).total_seconds(), 0.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            return


def _merger(
    cred: AuthFileCredential, kind: AuthFileKind[Any], metadata: dict[str, Any], tokens: TokenSet
) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """New tokens into the file as it is when written (a change made meanwhile survives); `metadata`
    stands in for a file that no longer holds this credential."""

    def merge(current: dict[str, Any] | None) -> dict[str, Any]:
        usable = current is not None and credential_type(current) == cred.type
        return kind.merge_tokens(canonical_metadata(current) if current and usable else metadata, tokens)

    return merge
