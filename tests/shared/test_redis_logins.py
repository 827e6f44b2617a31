"""The sign-ins kept in Redis against a real redis-server: their cap, and commands Redis refuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from cliproxy.accounts import cli_login, oidc
from cliproxy.accounts.oidc import Pending, SSOError
from cliproxy.accounts.rules import AccountsError
from cliproxy.credentials.oauth import pkce_challenge
from cliproxy.management.login_sessions import MirrorUnavailable
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.logins import RedisCliLogins, RedisLoginMirror, RedisPendingSignIns
from tests.shared.conftest import PASSWORD, RedisServer


async def started(url: str) -> RedisLink:
    link = RedisLink(url, "test:")
    await link.start()
    assert await link.wait_up(5)
    return link


@pytest.fixture
async def refusing(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    """A link as a Redis user that may not run HSET or PUBLISH: Redis answers those with NOPERM."""
    admin = await started(redis_server.url)
    rules = ["on", ">limited-pass", "~*", "&*", "+@all", "-hset", "-publish"]
    await admin.client.execute_command("ACL", "SETUSER", "limited", *rules)
    await admin.stop()
    link = await started(redis_server.url.replace(f":{PASSWORD}@", ":limited-pass@").replace("://", "://limited", 1))
    yield link
    await link.stop()


async def test_a_device_code_redis_did_not_store_is_not_handed_out(refusing: RedisLink) -> None:
    with pytest.raises(AccountsError) as refused:
        await RedisCliLogins(refusing).start_device(time.time())
    assert refused.value.status == 503


async def test_a_cancel_redis_did_not_publish_says_so(refusing: RedisLink) -> None:
    with pytest.raises(MirrorUnavailable):
        await RedisLoginMirror(refusing).cancel("state-1")


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    made = await started(redis_server.url)
    yield made
    await made.stop()


async def test_cli_sign_ins_pending_in_redis_are_capped_like_in_memory(link: RedisLink) -> None:
    """Loopback and device codes are capped apart, so anonymous device codes never block a signed-in
    user's loopback code; a code spent or polled to the end frees its place."""
    logins, now = RedisCliLogins(link, max_pending=1, max_devices=1), time.time()
    verifier = "v" * 43
    code = await logins.authorize("ann@example.com", "http://127.0.0.1:8123/cb", pkce_challenge(verifier), now)
    device, user_code = await logins.start_device(now)
    for attempt in (
        logins.start_device(now),
        logins.authorize("ann@example.com", "http://127.0.0.1:1/", "c" * 43, now),
    ):
        with pytest.raises(AccountsError) as refused:
            await attempt
        assert (refused.value.status, refused.value.message) == (429, cli_login.TOO_MANY_PENDING)
    await logins.approve_device(user_code, "ann@example.com", now)
    assert await logins.poll(device, now) == "ann@example.com"
    await logins.start_device(now)  # the polled device code's place
    assert await logins.exchange(code, verifier, "http://127.0.0.1:8123/cb", now) == "ann@example.com"
    await logins.authorize("ann@example.com", "http://127.0.0.1:8123/cb", pkce_challenge(verifier), now)
    for attempt in (  # both full again
        logins.start_device(now),
        logins.authorize("ann@example.com", "http://127.0.0.1:1/", "c" * 43, now),
    ):
        with pytest.raises(AccountsError):
            await attempt


async def test_single_sign_ons_pending_in_redis_are_capped_and_free_their_place_when_taken_or_expired(
    link: RedisLink,
) -> None:
    pending = RedisPendingSignIns(link, max_pending=2)

    def record(seconds: float) -> Pending:
        return Pending("nonce", "verifier", "http://proxy/sso/callback", "", "binding", time.time() + seconds)

    await pending.put("state-1", record(600))
    await pending.put("state-2", record(0.2))
    with pytest.raises(SSOError, match=oidc.TOO_MANY_PENDING):
        await pending.put("state-3", record(600))
    assert await pending.take("state-1") is not None
    await pending.put("state-3", record(600))  # the taken one's place
    await asyncio.sleep(0.3)
    await pending.put("state-4", record(600))  # the expired one's place
    with pytest.raises(SSOError, match=oidc.TOO_MANY_PENDING):
        await pending.put("state-5", record(600))
