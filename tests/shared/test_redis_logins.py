"""The sign-ins kept in Redis against a real redis-server that answers some commands with an error."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from cliproxy.accounts.rules import AccountsError
from cliproxy.management.login_sessions import MirrorUnavailable
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.logins import RedisCliLogins, RedisLoginMirror
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
