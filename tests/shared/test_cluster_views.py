"""Management usage and `/metrics` on any process of a cluster count every request exactly once."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import openai
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.shared.cluster import PLAIN, UPSTREAM_KEY, Node, compat_yaml, eventually, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import RedisServer
from tests.shared.test_limits_across_processes import MESSAGES, ask, client

pytestmark = pytest.mark.subprocess


async def usage_total(node: Node) -> int:
    status, body = await node.get("/v0/management/usage")
    assert status == 200
    total: int = json.loads(body)["usage"]["total_requests"]
    return total


async def key_usage(node: Node) -> int:
    status, body = await node.get("/v0/management/api-key-usage")
    assert status == 200
    (entry,) = [v for entries in json.loads(body).values() for k, v in entries.items() if k.endswith(UPSTREAM_KEY)]
    return int(entry["success"]) + int(entry["failed"])


async def metric_requests(node: Node) -> float:
    status, body = await node.get("/metrics")
    assert status == 200
    return sum(float(v) for v in re.findall(rb"^cliproxy_requests_total\{[^}]*\} (\S+)$", body, re.MULTILINE))


async def test_usage_and_metrics_on_either_process_count_every_request_once(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        for index in (0, 0, 1, 1, 1):
            assert await ask(nodes[index].url, PLAIN) == 200

        async def all_counted() -> bool:
            return all([await usage_total(node) == 5 for node in nodes])

        await eventually(all_counted)
        assert [await key_usage(node) for node in nodes] == [5, 5]

        async def all_scraped() -> bool:  # each process publishes its tallies every few seconds
            return all([await metric_requests(node) == 5 for node in nodes])

        await eventually(all_scraped, timeout=15, step=0.5)
        assert [await usage_total(node) for node in nodes] == [5, 5]
    finally:
        stop_nodes(nodes)
    assert len(fake.seen) == 5


async def test_a_model_name_holding_the_field_separator_does_not_break_cluster_usage(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    """The client picks the model name, thinking suffix included: a separator byte in it must not turn
    the cluster's usage hash into one `/v0/management/usage` cannot read."""
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url)
    try:
        odd = client(nodes[0].url, PLAIN).chat.completions.create(model="gpt-fake(a\x1fb)", messages=MESSAGES)
        with contextlib.suppress(openai.APIStatusError):
            await odd
        assert await ask(nodes[0].url, PLAIN) == 200

        async def counted() -> bool:
            return await usage_total(nodes[1]) >= 1

        await eventually(counted)
        status, body = await nodes[1].get("/v0/management/usage")
        assert status == 200
        models = {m for key in json.loads(body)["usage"]["apis"].values() for m in key["models"]}
        assert models == {"gpt-fake", "gpt-fake(a\x1fb)"}
    finally:
        stop_nodes(nodes)
