"""Tokens minted on demand (service-account keys): cached per credential until shortly before expiry.

A credential whose file holds a key rather than a token gets a fresh access token from its
provider's `mint`; one mint is in flight per credential at a time, and a changed file (new key,
other account) never reuses the old token.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cliproxy.credentials.files import AuthFileCredential
from cliproxy.credentials.oauth import TokenSet

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300
DEFAULT_LIFETIME_SECONDS = 3600

Mint = Callable[[AuthFileCredential], Awaitable[TokenSet]]


@dataclass(frozen=True)
class _Cached:
    token: str
    expires_at: float
    fingerprint: str


class MintedTokens:
    """Access tokens per credential id, minted by `mint`, cached until `REFRESH_MARGIN_SECONDS` before expiry."""

    def __init__(self, mint: Mint) -> None:
        self._mint_token = mint
        self._cache: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Task[_Cached]] = {}
        self.mint_count = 0

    async def token(self, cred: AuthFileCredential) -> str:
        fingerprint = cred.sha256  # the file's bytes: a new key is a new file
        cached = self._cache.get(cred.id)
        if cached and cached.fingerprint == fingerprint and cached.expires_at - REFRESH_MARGIN_SECONDS > time.time():
            return cached.token
        task = self._inflight.get(cred.id)
        if task is None:
            task = asyncio.create_task(self._mint(cred, fingerprint))
            self._inflight[cred.id] = task
            task.add_done_callback(functools.partial(self._forget, cred.id))
        return (await asyncio.shield(task)).token

    def _forget(self, key: str, task: asyncio.Task[_Cached]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting caller gets it too

    def invalidate(self, cred: AuthFileCredential) -> None:
        """Drop a cached token (the upstream answered 401 with it)."""
        self._cache.pop(cred.id, None)

    async def _mint(self, cred: AuthFileCredential, fingerprint: str) -> _Cached:
        self.mint_count += 1
        tokens = await self._mint_token(cred)
        lifetime = tokens.expires_in if tokens.expires_in is not None else DEFAULT_LIFETIME_SECONDS
        cached = _Cached(tokens.access_token, time.time() + lifetime, fingerprint)
        self._cache[cred.id] = cached
        log.info("%s: minted an access token for %s (valid %d s)", cred.type, cred.label, lifetime)
        return cached
