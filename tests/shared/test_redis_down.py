"""Redis stopped under two running processes: fail-closed refuses limited keys, fail-open serves them;
plain keys always work, `/readyz` says why, and both come back by themselves when Redis does."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.shared.cluster import LIMITED, PLAIN, compat_yaml, eventually, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import PASSWORD, RedisServer
from tests.shared.test_limits_across_processes import ask

pytestmark = pytest.mark.subprocess


async def ready_status(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url + "/readyz") as r:
        return r.status, json.loads(await r.read())


async def chat_error(url: str) -> tuple[int, dict[str, object]]:
    payload = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {LIMITED}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json=payload, headers=headers) as r,
    ):
        return r.status, json.loads(await r.read())


async def test_fail_closed_refuses_limited_keys_serves_plain_ones_and_recovers(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml(max_requests_per_minute=100) + compat_yaml(base), redis_server.url)
    try:
        assert await ask(nodes[0].url) == 200
        redis_server.stop()
        for node in nodes:
            status, body = await chat_error(node.url)
            assert status == 503, body
            assert body["error"]["message"] == "shared state unavailable"  # type: ignore[index]
            assert await ask(node.url, PLAIN) == 200
            status, ready = await ready_status(node.url)
            assert status == 503 and "shared state unavailable" in json.dumps(ready)
        redis_server.start()

        async def back() -> bool:
            return all([await ask(node.url) == 200 for node in nodes])

        await eventually(back, timeout=15, step=0.25)
        assert all([(await ready_status(node.url))[0] == 200 for node in nodes])
    finally:
        stop_nodes(nodes)
    for node in nodes:
        assert "lost Redis" in node.err and "connected to Redis" in node.err
        assert PASSWORD not in node.out + node.err


async def test_fail_open_serves_limited_keys_with_local_counting_and_a_warning(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    body = keys_yaml(max_requests_per_minute=2) + compat_yaml(base)
    nodes = await start_nodes(tmp_path, body, redis_server.url, on_down="fail-open")
    try:
        assert await ask(nodes[0].url) == 200
        redis_server.stop()
        # each process now counts alone: two more each, then its own limit refuses
        statuses = [await ask(node.url) for node in nodes for _ in range(3)]
        assert statuses == [200, 200, 429, 200, 200, 429]
        assert (await ready_status(nodes[0].url))[0] == 200  # fail-open: still serving everyone
        redis_server.start()

        async def shared_again() -> bool:
            status, _body = await nodes[1].get("/readyz")
            return status == 200 and await ask(nodes[1].url, PLAIN) == 200

        await eventually(shared_again, timeout=15, step=0.25)
    finally:
        stop_nodes(nodes)
    assert all("fail-open" in node.err for node in nodes)
    assert sum(node.err.count("counted in this process only") for node in nodes) == 2  # once a minute at most


async def test_processes_start_without_redis_and_connect_when_it_appears(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    redis_server.stop()
    nodes = await start_nodes(
        tmp_path, keys_yaml(max_concurrent=5) + compat_yaml(base), redis_server.url, count=1, wait_ready=False
    )
    try:
        assert (await chat_error(nodes[0].url))[0] == 503
        assert await ask(nodes[0].url, PLAIN) == 200
        redis_server.start()

        async def connected() -> bool:
            return await ask(nodes[0].url) == 200

        await eventually(connected, timeout=15, step=0.25)
    finally:
        stop_nodes(nodes)
