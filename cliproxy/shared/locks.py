"""The OAuth refresh lock across processes: a `LockSpace` in Redis.

A refresh token is single-use, so exactly one process may spend it. `hold(name)` first takes the
in-process lock (so one coroutine per process contends), then `SET lock:<name> <token> NX PX`;
while held, the lock's expiry is pushed forward every third of `LOCK_MS`, so a slow token endpoint
does not let a second process in, and a process that dies frees it within `LOCK_MS`. The release
is a Lua compare-and-delete, so a process never frees a lock it lost. Waiting is bounded by
`WAIT_SECONDS`, also while Redis answers the `SET` with an error (READONLY, OOM), polling at the same
pace (then `TimeoutError`, which the refresher records as a failed refresh and retries).

The process that got the lock second re-reads the credential file under it and finds the new
token there (`credentials/refresh.py`), so it never spends the refresh token again. While Redis is
down the in-process lock alone holds, with a warning: processes sharing an auth-dir could then
refresh the same credential twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from cliproxy.credentials.locks import KeyedLocks, LockSpace
from cliproxy.shared.connection import RedisLink

log = logging.getLogger(__name__)

LOCK_MS = 30_000
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLocks:
    def __init__(self, link: RedisLink, *, wait_seconds: float = WAIT_SECONDS) -> None:
        self.link = link
        self.wait_seconds = wait_seconds
        self.local = KeyedLocks()
        self._release: Any = link.client.register_script(RELEASE)
        self._renew: Any = link.client.register_script(RENEW)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self.local.hold(key):
            name = self.link.key("lock", key)
            token = await self._acquire(name, key)
            if token is None:
                yield
                return
            renewer = asyncio.create_task(self._keep(name, token), name=f"cliproxy-lock:{key}")
            try:
                yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                with contextlib.suppress(*self.link.errors):
                    await self._release(keys=[name], args=[token])

    async def _acquire(self, name: str, key: str) -> str | None:
        """The lock's token once held; None when Redis is down (the in-process lock alone holds)."""
        link = self.link
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self.wait_seconds
        refused = ""
        while True:
            if not link.up:
                log.warning("shared state: Redis is down; refreshing %s under this process's lock only", key)
                return None
            try:
                if await link.client.set(name, token, nx=True, px=LOCK_MS):
                    return token
                refused = ""
            except link.errors as exc:
                # a lost connection marks the link down (the next pass falls back at once); an error
                # answer (READONLY, OOM) leaves it up, so it waits and polls like a held lock
                link.failed(exc)
                refused = exc.__class__.__name__
            if time.monotonic() >= deadline:
                why = f"Redis refused it ({refused})" if refused else "another process has held it"
                raise TimeoutError(f"no refresh lock of {key} within {self.wait_seconds:.0f} s: {why}")
            await asyncio.sleep(POLL_SECONDS)

    async def _keep(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(LOCK_MS / 3000)
            with contextlib.suppress(*self.link.errors):
                await self._renew(keys=[name], args=[token, LOCK_MS])


def _check(locks: RedisLocks) -> LockSpace:
    return locks  # the type checker holds the implementation to the protocol
