"""Sign-ins in progress kept in Redis, so each step may land on any process of a cluster.

A single sign-on started on one process is finished by the provider's callback, which the load
balancer may send to another; a CLI's device code is approved in the panel through one process
and polled through another. With `shared-state.redis-url` these records live in Redis as small
JSON values (hashes for device codes) that expire when they would in memory:

- `sso:<sha256(state)>`: the pending single sign-on (nonce, PKCE verifier, where to land, the
  browser binding's SHA-256), as one process keeps it in memory; taken with `GETDEL`, once.
- `cli-code:<sha256(code)>`: a CLI loopback code (email, redirect address, PKCE challenge).
- `cli-device:<sha256(device code)>` (`user_code`, and `email` once approved) and
  `cli-user-code:<user code>` → the device code's digest, for the approval.
- `pending:sso`, `pending:cli-code` and `pending:cli-device`: sorted sets of the records above
  (score = when each expires), so at most `MAX_PENDING` (`MAX_PENDING_DEVICES`) of each kind are
  pending across the cluster, as each process keeps in memory without Redis; a record taken leaves
  its set.

Approval and poll are Lua scripts, so a device code is approved once and its token issued once.
While Redis is down these steps fail with a 503 (`shared state unavailable`): starting again when
it is back is all it takes, and no sign-in is let through unchecked.

The management panel's upstream logins (`RedisLoginMirror`) stay in the process that runs their
task; `oauth-login:<sha256(state)>` holds a copy of the status for the others, and a cancel goes
to the owner as an `oauth-cancel` event on the events channel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from cliproxy import jsonio
from cliproxy.accounts.cli_login import (
    CODE_SECONDS,
    MAX_PENDING,
    MAX_PENDING_DEVICES,
    TOO_MANY_PENDING,
    UNKNOWN_CODE,
    UNKNOWN_DEVICE,
    UNKNOWN_USER_CODE,
    PendingCliLogins,
    check_challenge,
    check_exchange,
    loopback_redirect,
    new_user_code,
    typed_user_code,
)
from cliproxy.accounts.oidc import MAX_PENDING as MAX_PENDING_SSO
from cliproxy.accounts.oidc import TOO_MANY_PENDING as TOO_MANY_PENDING_SSO
from cliproxy.accounts.oidc import Pending, PendingSignIns, SSOError
from cliproxy.accounts.rules import AccountsError
from cliproxy.clientkeys import secret_digest
from cliproxy.management.login_sessions import LoginMirror, LoginStatus, MirrorUnavailable
from cliproxy.shared.connection import RedisLink

log = logging.getLogger(__name__)

UNAVAILABLE = "shared state unavailable: sign-ins need Redis, which is unreachable; try again shortly"
LOGINS_UNAVAILABLE = "shared state unavailable: this login runs on another process and Redis is unreachable"
APPROVE = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'email') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'email', ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""
POLL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local email = redis.call('HGET', KEYS[1], 'email')
if email then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return email
end
return ''
"""
# KEYS: the kind's pending set; ARGV: now, the cap, the record's end, its member, the set's life (s)
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class PendingCap:
    """At most `limit` records of one kind pending across the cluster: the endpoints that create them
    are public, so without it anyone could fill Redis with sign-ins never finished."""

    def __init__(self, link: RedisLink, kind: str, limit: int) -> None:
        self.link = link
        self.key = link.key("pending", kind)
        self.limit = limit
        self._reserve: Any = link.client.register_script(RESERVE)

    async def reserve(self, member: str, seconds: float) -> bool:
        """Count `member` for `seconds` unless `limit` are pending; raises the link's errors."""
        now = time.time()
        args = [repr(now), self.limit, repr(now + seconds), member, math.ceil(seconds) + 1]
        return bool(await self._reserve(keys=[self.key], args=args))


class RedisPendingSignIns:
    """`PendingSignIns` in Redis (see the module docstring)."""

    def __init__(self, link: RedisLink, *, max_pending: int = MAX_PENDING_SSO) -> None:
        self.link = link
        self.cap = PendingCap(link, "sso", max_pending)

    def _key(self, state: str) -> str:
        return self.link.key("sso", secret_digest(state))

    async def put(self, state: str, pending: Pending) -> None:
        record = jsonio.dumps(dataclasses.asdict(pending))
        seconds = max(0.001, pending.expires - time.time())
        try:
            if not await self.cap.reserve(secret_digest(state), seconds):
                raise SSOError(TOO_MANY_PENDING_SSO)
            await self.link.client.set(self._key(state), record, px=int(seconds * 1000))
        except self.link.errors as exc:
            self.link.failed(exc)
            raise SSOError(UNAVAILABLE) from None

    async def take(self, state: str) -> Pending | None:
        try:
            pipe = self.link.client.pipeline(transaction=False)
            pipe.getdel(self._key(state))
            pipe.zrem(self.cap.key, secret_digest(state))
            record, _ = await pipe.execute()
        except self.link.errors as exc:
            self.link.failed(exc)
            raise SSOError(UNAVAILABLE) from None
        return Pending(**jsonio.loads(record)) if record else None


class RedisCliLogins:
    """`PendingCliLogins` in Redis (see the module docstring)."""

    def __init__(
        self, link: RedisLink, *, max_pending: int = MAX_PENDING, max_devices: int = MAX_PENDING_DEVICES
    ) -> None:
        self.link = link
        self._approve: Any = link.client.register_script(APPROVE)
        self._poll: Any = link.client.register_script(POLL)
        self.ttl_ms = int(CODE_SECONDS * 1000)
        # capped apart, as in memory: anyone may start a device code, only signed-in users a loopback one
        self.codes = PendingCap(link, "cli-code", max_pending)
        self.devices = PendingCap(link, "cli-device", max_devices)

    @staticmethod
    async def _reserve(cap: PendingCap, member: str) -> None:
        if not await cap.reserve(member, CODE_SECONDS):
            raise AccountsError(429, TOO_MANY_PENDING)

    def _unavailable(self, exc: BaseException) -> AccountsError:
        self.link.failed(exc)
        return AccountsError(503, UNAVAILABLE)

    async def authorize(self, email: str, redirect_uri: str, challenge: str, now: float) -> str:
        check_challenge(challenge)
        record = {"email": email, "redirect_uri": loopback_redirect(redirect_uri), "challenge": challenge}
        code = secrets.token_urlsafe(32)
        digest = secret_digest(code)
        try:
            await self._reserve(self.codes, "code:" + digest)
            await self.link.client.set(self.link.key("cli-code", digest), jsonio.dumps(record), px=self.ttl_ms)
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        return code

    async def exchange(self, code: str, verifier: str, redirect_uri: str, now: float) -> str:
        if not code:
            raise AccountsError(400, UNKNOWN_CODE)
        digest = secret_digest(code)
        try:
            pipe = self.link.client.pipeline(transaction=False)
            pipe.getdel(self.link.key("cli-code", digest))
            pipe.zrem(self.codes.key, "code:" + digest)
            record, _ = await pipe.execute()
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        if not record:
            raise AccountsError(400, UNKNOWN_CODE)
        pending = jsonio.loads(record)
        check_exchange(pending["redirect_uri"], pending["challenge"], redirect_uri, verifier)
        return str(pending["email"])

    async def start_device(self, now: float) -> tuple[str, str]:
        device_code = secrets.token_urlsafe(32)
        device = self.link.key("cli-device", secret_digest(device_code))
        try:
            await self._reserve(self.devices, "device:" + secret_digest(device_code))
            while True:  # a user code is 20^8 strong: a second try is already rare
                user_code = new_user_code()
                if await self.link.client.set(
                    self.link.key("cli-user-code", user_code), secret_digest(device_code), px=self.ttl_ms, nx=True
                ):
                    break
            replies = await self.link.send([("HSET", device, "user_code", user_code), ("PEXPIRE", device, self.ttl_ms)])
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        for reply in replies:  # an error answer (OOM) comes back as the reply: the code was not stored
            if isinstance(reply, Exception):
                raise self._unavailable(reply)
        return device_code, user_code

    async def approve_device(self, user_code: str, email: str, now: float) -> None:
        by_user_code = self.link.key("cli-user-code", typed_user_code(user_code))
        try:
            digest = await self.link.client.get(by_user_code)
            approved = digest and await self._approve(
                keys=[self.link.key("cli-device", digest.decode()), by_user_code], args=[email]
            )
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        if not approved:
            raise AccountsError(404, UNKNOWN_USER_CODE)

    async def poll(self, device_code: str, now: float) -> str | None:
        if not device_code:
            raise AccountsError(400, UNKNOWN_DEVICE)
        digest = secret_digest(device_code)
        try:
            keys = [self.link.key("cli-device", digest), self.devices.key]
            reply = await self._poll(keys=keys, args=["device:" + digest])
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        if reply == 0:
            raise AccountsError(400, UNKNOWN_DEVICE)
        return reply.decode() if reply else None


class RedisLoginMirror:
    """`LoginMirror` in Redis (see the module docstring); copies are written in the order made."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._order = asyncio.Lock()
        self._handlers: list[Callable[[str], None]] = []
        link.on_event("oauth-cancel", self._cancelled)

    def _key(self, state: str) -> str:
        return self.link.key("oauth-login", secret_digest(state))

    async def put(self, status: LoginStatus, ttl_seconds: float) -> None:
        async with self._order:
            try:
                record = jsonio.dumps(dataclasses.asdict(status))
                await self.link.client.set(self._key(status.state), record, px=int(ttl_seconds * 1000))
            except self.link.errors as exc:
                self.link.failed(exc)
                log.warning("shared state: the %s login's status is known to this process only", status.provider)

    async def get(self, state: str) -> LoginStatus | None:
        try:
            record = await self.link.client.get(self._key(state))
        except self.link.errors as exc:
            self.link.failed(exc)
            raise MirrorUnavailable(LOGINS_UNAVAILABLE) from None
        return LoginStatus(**jsonio.loads(record)) if record else None

    async def cancel(self, state: str) -> None:
        if not self.link.up:
            raise MirrorUnavailable(LOGINS_UNAVAILABLE)
        try:
            await self.link.publish("oauth-cancel", state=state)
        except self.link.errors:
            raise MirrorUnavailable(LOGINS_UNAVAILABLE) from None

    def on_cancel(self, handler: Callable[[str], None]) -> None:
        self._handlers.append(handler)

    def _cancelled(self, event: dict[str, Any]) -> None:
        for handler in self._handlers:
            handler(str(event.get("state", "")))


def _check(
    cli: RedisCliLogins, pending: RedisPendingSignIns, mirror: RedisLoginMirror
) -> tuple[PendingCliLogins, PendingSignIns, LoginMirror]:
    return cli, pending, mirror  # the type checker holds the implementations to the protocols
