"""Named locks: one per credential file (the store) and one per credential refresh (the refresher).

`KeyedLocks` is the in-process implementation of `LockSpace`. A refresh spends a single-use
refresh token, so when several processes serve one auth-dir they must agree on who refreshes:
a shared implementation (for example one backed by Redis) can replace `KeyedLocks` as the
refresher's lock space without any change to the refresher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class LockSpace(Protocol):
    """Mutual exclusion by name: `async with locks.hold("claude-a.json"): ...`."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...


class KeyedLocks:
    """One `asyncio.Lock` per key, created on first use and dropped when nobody holds or awaits it."""

    __slots__ = ("_locks", "_users")

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    def __len__(self) -> int:
        """How many keys are held or awaited right now."""
        return len(self._locks)
