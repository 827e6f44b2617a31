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
import secrets
import time
from collections.abc import Callable
from typing import Any

from cliproxy import jsonio
from cliproxy.accounts.cli_login import (
    CODE_SECONDS,
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
  return email
end
return ''
"""


class RedisPendingSignIns:
    """`PendingSignIns` in Redis (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def _key(self, state: str) -> str:
        return self.link.key("sso", secret_digest(state))

    async def put(self, state: str, pending: Pending) -> None:
        record = jsonio.dumps(dataclasses.asdict(pending))
        try:
            await self.link.client.set(self._key(state), record, px=max(1, int((pending.expires - time.time()) * 1000)))
        except self.link.errors as exc:
            self.link.failed(exc)
            raise SSOError(UNAVAILABLE) from None

    async def take(self, state: str) -> Pending | None:
        try:
            record = await self.link.client.getdel(self._key(state))
        except self.link.errors as exc:
            self.link.failed(exc)
            raise SSOError(UNAVAILABLE) from None
        return Pending(**jsonio.loads(record)) if record else None


class RedisCliLogins:
    """`PendingCliLogins` in Redis (see the module docstring)."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self._approve: Any = link.client.register_script(APPROVE)
        self._poll: Any = link.client.register_script(POLL)
        self.ttl_ms = int(CODE_SECONDS * 1000)

    def _unavailable(self, exc: BaseException) -> AccountsError:
        self.link.failed(exc)
        return AccountsError(503, UNAVAILABLE)

    async def authorize(self, email: str, redirect_uri: str, challenge: str, now: float) -> str:
        check_challenge(challenge)
        record = {"email": email, "redirect_uri": loopback_redirect(redirect_uri), "challenge": challenge}
        code = secrets.token_urlsafe(32)
        try:
            await self.link.client.set(
                self.link.key("cli-code", secret_digest(code)), jsonio.dumps(record), px=self.ttl_ms
            )
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
        return code

    async def exchange(self, code: str, verifier: str, redirect_uri: str, now: float) -> str:
        if not code:
            raise AccountsError(400, UNKNOWN_CODE)
        try:
            record = await self.link.client.getdel(self.link.key("cli-code", secret_digest(code)))
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
            while True:  # a user code is 20^8 strong: a second try is already rare
                user_code = new_user_code()
                if await self.link.client.set(
                    self.link.key("cli-user-code", user_code), secret_digest(device_code), px=self.ttl_ms, nx=True
                ):
                    break
            await self.link.send([("HSET", device, "user_code", user_code), ("PEXPIRE", device, self.ttl_ms)])
        except self.link.errors as exc:
            raise self._unavailable(exc) from None
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
        try:
            reply = await self._poll(keys=[self.link.key("cli-device", secret_digest(device_code))])
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
        await self.link.publish("oauth-cancel", state=state)

    def on_cancel(self, handler: Callable[[str], None]) -> None:
        self._handlers.append(handler)

    def _cancelled(self, event: dict[str, Any]) -> None:
        for handler in self._handlers:
            handler(str(event.get("state", "")))


def _check(
    cli: RedisCliLogins, pending: RedisPendingSignIns, mirror: RedisLoginMirror
) -> tuple[PendingCliLogins, PendingSignIns, LoginMirror]:
    return cli, pending, mirror  # the type checker holds the implementations to the protocols
