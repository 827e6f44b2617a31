"""What one request costs in Redis, watched on the real redis-server with `MONITOR`: nothing for a
plain key, one admission script call for a key with limits, and one for a member key (with limits of
its own) of a budgeted team, whose team spend is read inside that same script call."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import openai
import redis.asyncio as aioredis

from tests.accounts.helpers import PASSWORD as USER_PASSWORD
from tests.accounts.helpers import Admin, Browser, config
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream
from tests.shared.conftest import RedisServer

PLAIN = "sk-plain-config-key-0001"
LIMITED = "sk-limited-config-key-0002"
# What a request leaves for after its answer (the write-behind queue: releases, usage adds, the
# cluster's totals) and the link's ping every second: none of it is on a request's path.
AFTER_THE_ANSWER = {"HINCRBY", "HINCRBYFLOAT", "EXPIRE", "ZREM", "SET", "HSET", "PING"}


class Monitor:
    """Every command redis-server runs, as `MONITOR` reports it; those a script runs are marked `lua`."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self.seen: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()

        async def run() -> None:
            async with self.client.monitor() as monitor:
                started.set()
                async for command in monitor.listen():
                    self.seen.append(command)

        self._task = asyncio.create_task(run())
        await asyncio.wait_for(started.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    def sent_since(self, mark: int) -> list[str]:
        """The commands clients sent since `mark` that a request waits for (not its scripts' own)."""
        names = [c["command"].split()[0].upper() for c in self.seen[mark:] if c.get("client_type") != "lua"]
        return [name for name in names if name not in AFTER_THE_ANSWER]


async def ask(url: str, key: str) -> None:
    oa = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    await oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


async def test_a_request_costs_no_command_for_a_plain_key_and_one_script_call_with_limits_or_a_team_budget(
    redis_server: RedisServer, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    text = config(base).replace(
        f"api-keys:\n  - {PLAIN}\n", f"api-keys:\n  - {PLAIN}\n  - key: {LIMITED}\n    max-requests-per-minute: 1000\n"
    )
    proxy = await start_proxy(text + f'shared-state:\n  redis-url: "{redis_server.url}"\n')
    admin = Admin(proxy)
    await admin.team("eng", **{"budget-usd": 100})
    user = {"email": "dan@example.com", "role": "user", "team": "eng", "password": USER_PASSWORD}
    await admin.call("POST", "/users", user, expect=201)
    dan = Browser(proxy)
    await dan.sign_in("dan@example.com")
    body = {"name": "main", "limits": {"max-requests-per-minute": 1000}}
    _, made = await dan.call("POST", "/keys", body, expect=201)
    await dan.close()
    assert made["max-requests-per-minute"] == 1000
    monitor = Monitor(redis_server.url)
    await monitor.start()
    sent: dict[str, list[str]] = {}
    try:
        for name, key in (("plain", PLAIN), ("limited", LIMITED), ("member", made["key"])):
            await ask(proxy.url, key)  # the first: the script is loaded, connections are open
            await asyncio.sleep(0.3)
            mark = len(monitor.seen)
            await ask(proxy.url, key)
            await asyncio.sleep(0.3)  # the write-behind flush (every 50 ms) went out meanwhile
            sent[name] = monitor.sent_since(mark)
        member_script = [c for c in monitor.seen[mark:] if c.get("client_type") == "lua"]
    finally:
        await monitor.stop()
    assert sent == {"plain": [], "limited": ["EVALSHA"], "member": ["EVALSHA"]}
    # the one call read the team's spend (a budget period's days of `team:eng:<day>`) and the key's window
    script_commands = {c["command"].split()[0].upper() for c in member_script}
    assert "HGET" in script_commands and "ZADD" in script_commands, member_script
    assert any(":team:eng:" in c["command"] for c in member_script), member_script
