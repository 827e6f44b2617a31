"""Brute-force limits across processes: failed sign-ins and management key failures counted in Redis.

Each process counting alone would give an attacker N times the tries on N processes, so with
`shared-state.redis-url` the failures and locks live in Redis: `fails:<rule>:<name>` counts the
failures (its TTL is the window: set at the first failure, or renewed at each one for a sliding
window) and `locked:<rule>:<name>` exists while `name` is locked (its TTL is the time left). One Lua
script counts a failure and, at the limit, swaps the count for the lock, so two processes cannot
both miss the limit. Times are Redis's own, so clocks of the hosts do not matter. Names (emails,
addresses) are kept as their SHA-256.

While Redis is down each process counts alone, with the same rules (never unlimited), and a lock
learned meanwhile stays in that process only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from cliproxy.accounts.passwords import LOCK_SECONDS, MAX_PER_ACCOUNT, MAX_PER_ADDRESS, WINDOW_SECONDS, SignInLimits
from cliproxy.management.bans import BAN_SECONDS, FAILURE_WINDOW_SECONDS, MAX_FAILURES, GuardBans
from cliproxy.shared.connection import RedisLink

log = logging.getLogger(__name__)

FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or ARGV[4] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class LockoutRule:
    name: str  # in the Redis keys
    limit: int  # failures within the window that lock
    window_seconds: float
    lock_seconds: float
    sliding: bool  # the window restarts at every failure (else at the first)


SIGNIN_ACCOUNT = LockoutRule("signin-account", MAX_PER_ACCOUNT, WINDOW_SECONDS, LOCK_SECONDS, sliding=False)
SIGNIN_ADDRESS = LockoutRule("signin-address", MAX_PER_ADDRESS, WINDOW_SECONDS, LOCK_SECONDS, sliding=False)
MANAGEMENT_KEY = LockoutRule("management-key", MAX_FAILURES, FAILURE_WINDOW_SECONDS, BAN_SECONDS, sliding=True)


class RedisLockouts:
    """The failure counts and locks of every rule; raises the link's errors (callers fall back)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._fail: Any = link.client.register_script(FAIL)

    def _keys(self, rule: LockoutRule, name: str) -> tuple[str, str]:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return self.link.key("fails", rule.name, digest), self.link.key("locked", rule.name, digest)

    async def locked_for(self, *checks: tuple[LockoutRule, str]) -> float:
        """The longest time left on the locks of `checks` (0: none is locked), in one round trip."""
        replies = await self.link.send([("PTTL", self._keys(rule, name)[1]) for rule, name in checks])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return max([0, *(int(reply) for reply in replies)]) / 1000  # -2: no lock

    async def failed(self, rule: LockoutRule, name: str) -> bool:
        """Count a failure; True when it locked `name`."""
        count, lock = self._keys(rule, name)
        args = [rule.limit, int(rule.window_seconds * 1000), int(rule.lock_seconds * 1000), int(rule.sliding)]
        return bool(await self._fail(keys=[count, lock], args=args))

    async def clear(self, rule: LockoutRule, name: str) -> None:
        await self.link.client.delete(self._keys(rule, name)[0])


class RedisSignInLimits:
    """`SignInLimits` of the whole cluster; `local` counts while Redis is down."""

    def __init__(self, lockouts: RedisLockouts, local: SignInLimits) -> None:
        self.lockouts = lockouts
        self.link = lockouts.link
        self.local = local

    async def wait(self, address: str, account: str) -> float:
        if self.link.up:
            try:
                return await self.lockouts.locked_for((SIGNIN_ACCOUNT, account), (SIGNIN_ADDRESS, address))
            except self.link.errors as exc:
                self.link.failed(exc)
        return await self.local.wait(address, account)

    async def failed(self, address: str, account: str) -> None:
        if self.link.up:
            try:
                await self.lockouts.failed(SIGNIN_ACCOUNT, account)
                await self.lockouts.failed(SIGNIN_ADDRESS, address)
                return
            except self.link.errors as exc:
                self.link.failed(exc)
        await self.local.failed(address, account)

    async def succeeded(self, account: str) -> None:
        await self.local.succeeded(account)
        if self.link.up:
            try:
                await self.lockouts.clear(SIGNIN_ACCOUNT, account)
            except self.link.errors as exc:
                self.link.failed(exc)


class RedisGuardBans:
    """`GuardBans` of the whole cluster; `local` counts while Redis is down."""

    def __init__(self, lockouts: RedisLockouts, local: GuardBans) -> None:
        self.lockouts = lockouts
        self.link = lockouts.link
        self.local = local

    async def ban_left(self, ip: str) -> float:
        if self.link.up:
            try:
                return await self.lockouts.locked_for((MANAGEMENT_KEY, ip))
            except self.link.errors as exc:
                self.link.failed(exc)
        return await self.local.ban_left(ip)

    async def fail(self, ip: str) -> None:
        if self.link.up:
            try:
                if await self.lockouts.failed(MANAGEMENT_KEY, ip):
                    minutes = BAN_SECONDS // 60
                    log.warning("management: client %s banned for %dm after %d wrong keys", ip, minutes, MAX_FAILURES)
                return
            except self.link.errors as exc:
                self.link.failed(exc)
        await self.local.fail(ip)

    async def succeed(self, ip: str) -> None:
        await self.local.succeed(ip)
        if self.link.up:
            try:
                await self.lockouts.clear(MANAGEMENT_KEY, ip)
            except self.link.errors as exc:
                self.link.failed(exc)


def _check(signin: RedisSignInLimits, bans: RedisGuardBans) -> tuple[SignInLimits, GuardBans]:
    return signin, bans  # the type checker holds the implementations to the protocols
