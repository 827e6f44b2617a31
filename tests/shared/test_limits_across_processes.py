"""Two real proxy processes sharing one real Redis: per-key limits and cooldowns hold across them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.shared.cluster import LIMITED, PLAIN, compat_yaml, eventually, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import RedisServer

pytestmark = pytest.mark.subprocess

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def client(url: str, key: str = LIMITED) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


async def ask(url: str, key: str = LIMITED) -> int:
    """The status of one chat completion through the proxy at `url` (200 on success)."""
    try:
        await client(url, key).chat.completions.create(model="gpt-fake", messages=MESSAGES)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


async def test_three_requests_a_minute_hold_across_two_processes(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml(max_requests_per_minute=3) + compat_yaml(base), redis_server.url)
    try:
        statuses = [await ask(nodes[i % 2].url) for i in range(6)]
    finally:
        stop_nodes(nodes)
    assert statuses.count(200) == 3 and statuses.count(429) == 3, statuses
    assert statuses[:3] == [200, 200, 200]
    assert len(fake.seen) == 3


async def test_one_in_flight_refuses_the_second_process_while_the_first_holds_a_slow_request(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml(max_concurrent=1) + compat_yaml(base), redis_server.url)
    try:
        fake.delay = 1.5
        slow = asyncio.create_task(ask(nodes[0].url))

        async def seen() -> bool:
            return len(fake.seen) == 1

        await eventually(seen)
        second = await ask(nodes[1].url)
        first = await slow
        fake.delay = 0
        after = await ask(nodes[1].url)  # the slot came back once the first finished
    finally:
        stop_nodes(nodes)
    assert (first, second, after) == (200, 429, 200)


async def test_daily_tokens_used_on_one_process_refuse_on_the_other(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml(max_tokens_per_day=5) + compat_yaml(base), redis_server.url)
    try:
        first = await ask(nodes[0].url)

        async def counted() -> bool:  # the usage add goes out after the answer
            status, body = await nodes[1].get("/v1/cliproxy/whoami", key=LIMITED)
            return status == 200 and json.loads(body)["usage"]["tokens_today"] >= 5

        await eventually(counted, timeout=30)
        second = await ask(nodes[1].url)
        plain = await ask(nodes[1].url, PLAIN)
    finally:
        stop_nodes(nodes)
    assert (first, second, plain) == (200, 403, 200)
    assert len(fake.seen) == 2


async def test_a_credential_cooling_after_a_429_on_one_process_is_not_called_through_the_other(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        fake.fail(429, headers={"Retry-After": "60"})
        first = await ask(nodes[0].url, PLAIN)

        async def cooling_seen_by_the_other() -> bool:
            status, body = await nodes[1].get("/v0/management/credential-status")
            return status == 200 and any(item["cooldowns"] for item in json.loads(body)["credentials"])

        await eventually(cooling_seen_by_the_other)
        second = await ask(nodes[1].url, PLAIN)
        calls_while_cooling = len(fake.seen)
        _status, body = await nodes[1].get("/v0/management/credential-status")
        item = next(i for i in json.loads(body)["credentials"] if i["cooldowns"])
        assert 55 <= item["cooldowns"][0]["seconds"] <= 60
        # reset-quota on the second process clears the cooldown on the first one too
        reset, _ = await nodes[1].post_json("/v0/management/reset-quota", {"auth_index": item["auth_index"]})

        async def cleared_on_the_first() -> bool:
            status, body = await nodes[0].get("/v0/management/credential-status")
            return status == 200 and not any(i["cooldowns"] for i in json.loads(body)["credentials"])

        await eventually(cleared_on_the_first)
        third = await ask(nodes[0].url, PLAIN)
    finally:
        stop_nodes(nodes)
    assert first == 429 and second == 429 and calls_while_cooling == 1
    assert reset == 200 and third == 200 and len(fake.seen) == 2
