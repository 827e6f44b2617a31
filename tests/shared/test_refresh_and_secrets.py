"""Across processes: one OAuth refresh for a token both see expired; the Redis password stays hidden."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from cliproxy.credentials.files import format_time
from tests.fakes.oauth import FakeOAuth
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import SECRET
from tests.shared.cluster import Node, compat_yaml, eventually, keys_yaml, start_nodes, stop_nodes
from tests.shared.conftest import PASSWORD, RedisServer

pytestmark = pytest.mark.subprocess


async def test_two_processes_seeing_an_expired_token_refresh_it_exactly_once(
    tmp_path: Path, redis_server: RedisServer, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    auths = tmp_path / "auths"
    auths.mkdir()
    path = auths / "claude-user.json"
    path.write_text(expired_claude_file(fake))
    os.chmod(path, 0o600)
    nodes = await start_nodes(tmp_path, keys_yaml(), redis_server.url, env=fake.env())
    try:

        async def refreshed() -> bool:
            return fake.requests["claude:refresh"] >= 1 and json.loads(path.read_text())["access_token"] != "at-expired"

        await eventually(refreshed, timeout=20)

        async def both_use_it() -> bool:  # each process's credential status shows the new expiry
            token = json.loads(path.read_text())["access_token"]
            for node in nodes:
                status, body = await node.get("/v0/management/credential-status")
                items = json.loads(body)["credentials"] if status == 200 else []
                if not items or items[0].get("refresh_error") or token == "at-expired":
                    return False
                if items[0]["expires"] is None or items[0]["expires"] < format_time(datetime.now(UTC)):
                    return False
            return True

        await eventually(both_use_it, timeout=20)
    finally:
        stop_nodes(nodes)
    assert fake.requests["claude:refresh"] == 1
    assert sum("was refreshed by another process" in node.err for node in nodes) <= 1
    assert not any("refresh of claude-user.json" in node.err and "failed" in node.err for node in nodes)


def host_copies(tmp_path: Path, files: list[dict[str, Any]]) -> list[Path]:
    """One auth dir per "host" (`node<i>/auths`), each holding its own copy of the login, 0600."""
    paths = []
    for index, contents in enumerate(files):
        auths = tmp_path / f"node{index}" / "auths"
        auths.mkdir(parents=True)
        path = auths / "claude-user.json"
        path.write_text(json.dumps(contents))
        os.chmod(path, 0o600)
        paths.append(path)
    return paths


async def both_refreshed(paths: list[Path]) -> bool:
    tokens = {json.loads(path.read_text())["access_token"] for path in paths}
    return len(tokens) == 1 and "at-expired" not in tokens


async def test_processes_on_separate_auth_dirs_take_the_refreshed_token_from_redis(
    tmp_path: Path, redis_server: RedisServer, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    contents = json.loads(expired_claude_file(fake))
    paths = host_copies(tmp_path, [contents, contents])  # two "hosts", each with its own copy of the same login
    nodes = await start_nodes(tmp_path, keys_yaml(), redis_server.url, env=fake.env(), own_auth_dirs=True)
    try:
        await eventually(lambda: both_refreshed(paths), timeout=20)
    finally:
        stop_nodes(nodes)
    assert fake.requests["claude:refresh"] == 1
    assert sum("took its new token from shared state" in node.err for node in nodes) == 1
    refresh_tokens = {json.loads(path.read_text())["refresh_token"] for path in paths}
    assert len(refresh_tokens) == 1 and refresh_tokens <= set(fake.refresh_tokens)  # the rotated one, valid


async def test_a_peers_refresh_brings_only_tokens_and_leaves_local_fields(
    tmp_path: Path, redis_server: RedisServer, aiohttp_server: Callable[[web.Application], Awaitable[TestServer]]
) -> None:
    """Each host's copy carries its own local settings; whichever host refreshes, the other takes the
    new tokens only, and Redis never holds the file's other fields."""
    fake = FakeOAuth()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    contents = json.loads(expired_claude_file(fake))
    paths = host_copies(tmp_path, [{**contents, "priority": i + 1, "note": f"host {i}"} for i in range(2)])
    nodes = await start_nodes(tmp_path, keys_yaml(), redis_server.url, env=fake.env(), own_auth_dirs=True)
    try:
        await eventually(lambda: both_refreshed(paths), timeout=20)
        client = redis.Redis.from_url(redis_server.url)
        try:
            shared = [await client.get(key) async for key in client.scan_iter(match="*credential*")]
        finally:
            await client.aclose()
    finally:
        stop_nodes(nodes)
    assert fake.requests["claude:refresh"] == 1
    assert sum("took its new token from shared state" in node.err for node in nodes) == 1
    for index, path in enumerate(paths):
        data = json.loads(path.read_text())
        assert (data["priority"], data["note"]) == (index + 1, f"host {index}")
    # The token endpoint's answer only: no field of either host's file.
    assert shared and all(b"host " not in value and b"priority" not in value for value in shared if value)


def expired_claude_file(fake: FakeOAuth) -> str:
    return json.dumps(
        {
            "type": "claude",
            "email": "user@example.com",
            "access_token": "at-expired",
            "refresh_token": fake.issue_refresh_token("claude"),
            "expired": format_time(datetime.now(UTC) - timedelta(minutes=5)),
        }
    )


async def test_the_redis_password_never_shows_in_logs_or_management_answers(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    _, base = upstream
    nodes = await start_nodes(tmp_path, keys_yaml() + compat_yaml(base), redis_server.url, count=1)
    node = nodes[0]
    try:
        status, config = await node.get("/v0/management/config")
        assert status == 200
        assert json.loads(config)["shared-state"]["redis-url"] == redis_server.url.replace(PASSWORD, "***")
        status, text = await node.get("/v0/management/config.yaml")
        assert status == 200 and b"<redacted:redis-password>" in text
        bodies = [config, text]
        for path in ("/v0/management/reload-status", "/v0/management/credential-status", "/readyz", "/metrics"):
            bodies.append((await node.get(path))[1])
        redis_server.stop()  # the lost-connection warning names the server
        await eventually(functools.partial(_not_ready, node), timeout=10)
        bodies.append((await node.get("/readyz"))[1])
        # the text a GET gave back saves unchanged: the placeholder becomes the password again
        headers = {"Authorization": f"Bearer {SECRET}"}
        async with (
            aiohttp.ClientSession() as session,
            session.put(node.url + "/v0/management/config.yaml", data=text, headers=headers) as r,
        ):
            assert r.status == 200
    finally:
        stop_nodes(nodes)
    assert not any(PASSWORD.encode() in body for body in bodies)
    assert PASSWORD not in node.out + node.err
    assert "redis://:***@127.0.0.1" in node.err
    assert PASSWORD in (node.directory / "config.yaml").read_text()


async def _not_ready(node: Node) -> bool:
    status, _ = await node.get("/readyz")
    return status == 503
