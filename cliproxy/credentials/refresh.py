"""Keeping OAuth credentials fresh: a background scheduler plus refresh-on-401, one flight at a time.

Refresh tokens are single-use, so two refreshes of the same credential racing each other would
log the user out: every refresh goes through `CredentialRefresher.refresh_now`, which joins an
in-flight refresh for the same credential id instead of starting a second one, and which answers
a caller holding an already-replaced token with the newer credential without any request.

Results are written back into the same file (atomic, 0600, all other fields kept) from a worker
thread. Failures are recorded on a per-credential `RefreshStatus` (shown by the management API),
logged, and retried after a backoff; nothing fails silently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from cliproxy.credentials.oauth import OAuthError, TokenSet
from cliproxy.credentials.providers import ProviderSettings, claude, codex
from cliproxy.credentials.store import (
    AuthFileCredential,
    CredentialFileError,
    canonical_metadata,
    credential_from_metadata,
    encode_credential,
    format_time,
    now_utc,
    write_credential_file,
)

log = logging.getLogger(__name__)

# Spec §7.3: how long before expiry each provider is refreshed.
LEADS: Mapping[str, timedelta] = {"claude": timedelta(hours=4), "codex": timedelta(days=5)}
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


def apply_tokens(metadata: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    """The file contents after a refresh: new token fields, every other field untouched."""
    meta = dict(metadata)
    meta["access_token"] = tokens.access_token
    if tokens.refresh_token:
        meta["refresh_token"] = tokens.refresh_token
    if tokens.id_token:
        meta["id_token"] = tokens.id_token
    if tokens.expires_at is not None:
        meta["expired"] = format_time(tokens.expires_at)
    meta["last_refresh"] = format_time(tokens.received_at)
    if meta.get("type") == "codex" and tokens.id_token and not meta.get("account_id"):
        account = codex.parse_id_token(tokens.id_token).account_id
        if account:
            meta["account_id"] = account
    return meta


class CredentialRefresher:
    """Refreshes claude/codex credentials: on demand (`refresh_now`) and on schedule (`run`).

    `on_refreshed` is called with each new credential so the owner can put it into the live
    runtime at once instead of waiting for the auth-dir watcher.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: ProviderSettings,
        *,
        on_refreshed: Callable[[AuthFileCredential], None] | None = None,
        workers: int = DEFAULT_WORKERS,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._session = session
        self._settings = settings
        self._on_refreshed = on_refreshed
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
        """When the scheduler should refresh `cred`; None for never (API keys, vertex, dead tokens)."""
        lead = LEADS.get(cred.type)
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

    async def _refresh(self, cred: AuthFileCredential) -> AuthFileCredential:
        status = self.status(cred.id)
        status.last_attempt = self._clock()
        try:
            async with self._workers:
                metadata = await asyncio.to_thread(_read_metadata, cred)
                refresh_token = str(metadata.get("refresh_token") or "")
                tokens = await self._call_provider(cred, refresh_token)
                new_meta = apply_tokens(metadata, tokens)
                await asyncio.to_thread(write_credential_file, cred.path, new_meta)
            fresh = credential_from_metadata(
                new_meta,
                path=cred.path,
                auth_dir=cred.path.parent,
                sha256=hashlib.sha256(encode_credential(new_meta)).hexdigest(),
            )
            fresh = dataclasses.replace(fresh, id=cred.id)
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
        if self._on_refreshed is not None:
            try:
                self._on_refreshed(fresh)
            except Exception:
                log.exception("on_refreshed hook failed for %s", cred.id)
        return fresh

    async def _call_provider(self, cred: AuthFileCredential, refresh_token: str) -> TokenSet:
        if cred.type == "claude":
            return await claude.refresh(
                self._session, self._settings.claude, refresh_token=refresh_token, proxy_url=cred.proxy_url
            )
        if cred.type == "codex":
            return await codex.refresh(
                self._session, self._settings.codex, refresh_token=refresh_token, proxy_url=cred.proxy_url
            )
        raise OAuthError(f"{cred.type} credentials are not refreshed with a refresh token")

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


def _read_metadata(cred: AuthFileCredential) -> dict[str, Any]:
    """The file as it is now (another process may have refreshed it); the snapshot's copy if unreadable.

    A file that is gone was deleted by the user: refreshing it would bring it back, so that raises.
    """
    try:
        data = json.loads(Path(cred.path).read_bytes())
    except FileNotFoundError:
        raise CredentialFileError("the credential file was removed; not refreshing it") from None
    except (OSError, ValueError):
        return cred.metadata_dict()
    if not isinstance(data, dict) or str(data.get("type", "")).strip().lower() != cred.type:
        return cred.metadata_dict()
    return canonical_metadata(data)
