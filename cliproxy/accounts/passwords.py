"""Passwords and the brakes on guessing them: bcrypt in a worker thread, and login attempt limits.

bcrypt costs a few hundred milliseconds of CPU by design, so hashing and checking run in a
worker thread. A sign-in for an unknown email still checks a hash (a fixed dummy one), so the
answer takes as long as a wrong password and does not tell which emails exist.

`LoginLimiter` counts failed sign-ins per client address and per account: past
`MAX_PER_ACCOUNT` failures in `WINDOW_SECONDS` the account is locked for `LOCK_SECONDS` (even the
right password is refused, so guessing in parallel from many addresses gains nothing), past
`MAX_PER_ADDRESS` the address is. A success clears the account's count, not the address's.
The accounts service counts through the `SignInLimits` protocol: this process's `LoginLimiter`
(`LocalSignInLimits`) by default, the cluster's counters in Redis with `shared-state.redis-url`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import bcrypt

BCRYPT_ROUNDS = 12
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; a longer password is refused rather than cut
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
MAX_TRACKED = 10_000  # entries kept per kind before old ones are dropped


def password_problem(password: str, min_length: int) -> str | None:
    """Why `password` cannot be used, or None."""
    if len(password) < min_length:
        return f"the password must have at least {min_length} characters"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return f"the password must be at most {MAX_PASSWORD_BYTES} bytes long"
    if not password.strip():
        return "the password must not be blank"
    return None


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def _check(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


@functools.lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return _hash("not-a-password-of-anyone", rounds)


def _check_dummy(password: str, rounds: int) -> None:
    """A check against the dummy hash, made here in the worker thread the first time too: made on
    the event loop it would stall every request and make the first unknown email answer slower."""
    _check(password, _dummy_hash(rounds))


class Passwords:
    """Hashes and checks passwords off the event loop."""

    def __init__(self, rounds: int = BCRYPT_ROUNDS) -> None:
        self.rounds = rounds

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(_hash, password, self.rounds)

    async def check(self, password: str, hashed: str) -> bool:
        """Whether `password` matches `hashed`; with no hash ('' : unknown user, SSO-only) a dummy
        check runs so the time taken says nothing, and the answer is False."""
        if not hashed:
            await asyncio.to_thread(_check_dummy, password, self.rounds)
            return False
        return await asyncio.to_thread(_check, password, hashed)


@dataclass(slots=True)
class _Count:
    failures: int = 0
    since: float = 0.0
    locked_until: float = 0.0


@dataclass
class LoginLimiter:
    """Failed sign-ins per address and per account (see the module docstring)."""

    per_account: int = MAX_PER_ACCOUNT
    per_address: int = MAX_PER_ADDRESS
    accounts: dict[str, _Count] = field(default_factory=dict)
    addresses: dict[str, _Count] = field(default_factory=dict)

    def wait(self, address: str, account: str, now: float) -> float:
        """Seconds until this address may try this account again (0: now)."""
        return max(_left(self.accounts.get(account), now), _left(self.addresses.get(address), now))

    def failed(self, address: str, account: str, now: float) -> None:
        _count(self.accounts, account, self.per_account, now)
        _count(self.addresses, address, self.per_address, now)

    def succeeded(self, account: str) -> None:
        self.accounts.pop(account, None)


class SignInLimits(Protocol):
    async def wait(self, address: str, account: str) -> float:
        """Seconds until this address may try this account again (0: now)."""
        ...

    async def failed(self, address: str, account: str) -> None: ...

    async def succeeded(self, account: str) -> None: ...


class LocalSignInLimits:
    """`SignInLimits` in this process's memory."""

    def __init__(self, limiter: LoginLimiter, clock: Callable[[], float]) -> None:
        self.limiter = limiter
        self.clock = clock

    async def wait(self, address: str, account: str) -> float:
        return self.limiter.wait(address, account, self.clock())

    async def failed(self, address: str, account: str) -> None:
        self.limiter.failed(address, account, self.clock())

    async def succeeded(self, account: str) -> None:
        self.limiter.succeeded(account)


def _left(entry: _Count | None, now: float) -> float:
    if entry is None or entry.locked_until <= now:
        return 0.0
    return entry.locked_until - now


def _count(book: dict[str, _Count], name: str, limit: int, now: float) -> None:
    entry = book.get(name)
    if entry is None:
        if len(book) >= MAX_TRACKED:
            for stale in [k for k, e in book.items() if e.locked_until <= now and now - e.since > WINDOW_SECONDS]:
                del book[stale]
        entry = book[name] = _Count(since=now)
    if now - entry.since > WINDOW_SECONDS:
        entry.failures, entry.since = 0, now
    entry.failures += 1
    if entry.failures >= limit:
        entry.failures, entry.since = 0, now
        entry.locked_until = now + LOCK_SECONDS
