"""The config writer over HTTP: comments survive, writes are serialised, live at once, and atomic."""

from __future__ import annotations

import asyncio
import difflib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from cliproxy.management.config_writer import CONFIG_WRITER, ConfigDoc, ConfigWriter
from cliproxy.server.services import SERVICES
from tests.config.styled import SECRET_TOKEN, STYLED_CONFIG
from tests.conftest import ProxyFactory, app_from_config, write_config
from tests.management.client import MANAGEMENT_BLOCK, SECRET_HASH, Mgmt

STYLED = STYLED_CONFIG.replace(SECRET_TOKEN, SECRET_HASH)


def changes(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


async def test_three_endpoints_keep_every_comment_and_untouched_line(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(STYLED)
    path = tmp_path / "config.yaml"
    assert path.read_text() == STYLED  # the loader did not rewrite it (the secret is already hashed)
    mgmt = Mgmt(server)

    assert (await mgmt.put("/debug", json={"value": True})).status == 200
    assert (await mgmt.patch("/api-keys", json={"old": "missing", "new": "sk-client-new-0004"})).status == 200
    reply = await mgmt.patch("/claude-api-key", json={"match": "sk-ant-claude-0002", "value": {"weight": 9}})
    assert reply.status == 200, reply

    after = path.read_text()
    removed, added = changes(STYLED, after)
    assert removed == [
        "debug: false",
        "    weight: 5 # optional: weighted-round-robin share; omitted defaults to 1",
    ]
    assert added == [
        '  - "sk-client-new-0004"',
        "debug: true",
        "    weight: 9 # optional: weighted-round-robin share; omitted defaults to 1",
    ]
    # Byte for byte: the original with exactly those three edits (line endings and all).
    expected = (
        STYLED.replace("\ndebug: false\n", "\ndebug: true\n", 1)
        .replace('  - "sk-client-server-0002"\n', '  - "sk-client-server-0002"\n  - "sk-client-new-0004"\n', 1)
        .replace("    weight: 5 # optional", "    weight: 9 # optional", 1)
    )
    assert path.read_bytes() == expected.encode()
    # Every comment line of the original is still there, in the same order.
    comments = [line for line in STYLED.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in after.splitlines() if line.lstrip().startswith("#")] == comments
    # And the live config agrees with the file.
    config = server.app[SERVICES].holder.current.config
    assert config.debug is True
    assert "sk-client-new-0004" in config.api_keys
    assert config.claude_api_key[1].weight == 9


async def test_change_is_live_on_v1_when_the_response_returns(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-old-client-key]\n" + MANAGEMENT_BLOCK)
    mgmt = Mgmt(server)

    async def models(key: str) -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/v1/models"), headers={"Authorization": f"Bearer {key}"}) as r,
        ):
            return r.status

    assert await models("sk-new-client-key") == 401
    assert (await mgmt.put("/api-keys", json=["sk-old-client-key", "sk-new-client-key"])).status == 200
    assert await models("sk-new-client-key") == 200
    assert (await mgmt.delete("/api-keys?value=sk-old-client-key")).status == 200
    assert await models("sk-old-client-key") == 401


async def test_deleted_provider_disappears_from_v1_models(proxy: ProxyFactory) -> None:
    config = (
        "host: 127.0.0.1\napi-keys: [sk-client-key-0001]\n"
        "openai-compatibility:\n"
        '  - name: "local"\n'
        '    base-url: "http://127.0.0.1:9/v1"\n'
        "    api-key-entries:\n      - api-key: sk-upstream\n"
        "    models:\n      - name: upstream-model-x\n        alias: kimi-k2\n"
        "claude-api-key:\n  - api-key: sk-ant-0001\n    models:\n      - name: claude-x\n        alias: my-claude\n"
    ) + MANAGEMENT_BLOCK
    server = await proxy(config)
    mgmt = Mgmt(server)

    async def model_ids() -> set[str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/v1/models"), headers={"Authorization": "Bearer sk-client-key-0001"}) as r,
        ):
            assert r.status == 200
            return {m["id"] for m in (await r.json())["data"]}

    assert {"kimi-k2", "my-claude"} <= await model_ids()
    assert (await mgmt.delete("/openai-compatibility?name=local")).status == 200
    ids = await model_ids()
    assert "kimi-k2" not in ids and "my-claude" in ids
    assert (await mgmt.delete("/claude-api-key?api-key=sk-ant-0001")).status == 200
    assert "my-claude" not in await model_ids()


async def test_concurrent_writers_are_serialised(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-first-key-0000]\n" + MANAGEMENT_BLOCK)
    mgmt = Mgmt(server)
    replies = await asyncio.gather(
        mgmt.patch("/api-keys", json={"old": "x", "new": "sk-added-by-one"}),
        mgmt.patch("/api-keys", json={"old": "y", "new": "sk-added-by-two"}),
        mgmt.put("/request-retry", json={"value": 7}),
        mgmt.patch("/claude-api-key", json={"index": 0, "value": {"weight": 1}}),  # 404: no entries
    )
    assert [r.status for r in replies] == [200, 200, 200, 404]
    keys = (await mgmt.get("/api-keys")).json()["api-keys"]
    assert sorted(keys) == ["sk-added-by-one", "sk-added-by-two", "sk-first-key-0000"]
    assert (await mgmt.get("/request-retry")).json() == {"request-retry": 7}
    text = (tmp_path / "config.yaml").read_text()
    assert "sk-added-by-one" in text and "sk-added-by-two" in text and "request-retry: 7" in text


async def test_writer_lock_orders_direct_updates(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\nrequest-retry: 0\n" + MANAGEMENT_BLOCK)
    writer = server.app[CONFIG_WRITER]

    def bump(doc: ConfigDoc) -> int:
        value = int(doc.get("request-retry", 0)) + 1
        doc.set("request-retry", value)
        return value

    results = await asyncio.gather(*(writer.update(bump) for _ in range(5)))
    assert sorted(results) == [1, 2, 3, 4, 5]
    assert server.app[SERVICES].holder.current.config.request_retry == 5


async def test_failed_rename_leaves_the_old_file_and_the_old_runtime(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    path = write_config(tmp_path, STYLED)
    os.chmod(path, 0o600)
    before = path.read_bytes()
    app = app_from_config(path)
    calls: list[tuple[Any, Any]] = []

    def crash_at_rename(src: Any, dst: Any) -> None:
        calls.append((src, dst))
        raise OSError(5, "Input/output error")

    app[CONFIG_WRITER] = ConfigWriter(app[SERVICES].reloader, replace=crash_at_rename)
    server = await aiohttp_server(app)
    mgmt = Mgmt(server)
    reply = await mgmt.put("/debug", json={"value": True})
    assert reply.status == 500
    assert reply.json() == {"error": "failed to save config: Input/output error"}
    assert len(calls) == 1 and Path(calls[0][1]) == path
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # the temp file is gone
    assert (path.stat().st_mode & 0o777) == 0o600
    assert app[SERVICES].holder.current.config.debug is False
    assert (await mgmt.get("/debug")).json() == {"debug": False}


async def test_invalid_result_is_422_and_the_file_is_untouched(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(STYLED)
    before = (tmp_path / "config.yaml").read_bytes()
    mgmt = Mgmt(server)
    reply = await mgmt.put("/proxy-url", json={"value": "ftp://nope.example"})
    assert reply.status == 422
    body = reply.json()
    assert body["error"] == "invalid_config" and body["message"].startswith("proxy-url: not a proxy URL")
    reply = await mgmt.put("/claude-api-key", json=[{"api-key": "k", "base-url": "not a url"}])
    assert reply.status == 422 and "claude-api-key[0].base-url" in reply.json()["message"]
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_viewer_cannot_write(proxy: ProxyFactory, tmp_path: Path) -> None:
    from tests.management.client import VIEWER, VIEWER_HASH

    server = await proxy(STYLED.replace("  # disable-auto-update-panel", f'  viewer-keys: ["{VIEWER_HASH}"]\n  #'))
    before = (tmp_path / "config.yaml").read_bytes()
    viewer = Mgmt(server, key=VIEWER)
    assert (await viewer.get("/debug")).status == 200
    for method, path, body in [
        ("PUT", "/debug", {"value": True}),
        ("PUT", "/api-keys", ["x"]),
        ("DELETE", "/claude-api-key?index=0", None),
        ("PUT", "/config.yaml", None),
    ]:
        reply = await viewer.request(method, path, json=body)
        assert reply.status == 403, (method, path)
        assert reply.headers["Cache-Control"] == "no-store"
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_an_edit_of_a_deleted_file_is_refused_not_a_fresh_open_config(
    proxy: ProxyFactory, tmp_path: Path
) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-keep-me-key-1]\n" + MANAGEMENT_BLOCK)
    mgmt = Mgmt(server)
    path = tmp_path / "config.yaml"
    path.unlink()
    reply = await mgmt.put("/debug", json={"value": True})
    assert reply.status == 500 and reply.json()["error"].startswith("failed to save config: config.yaml not found")
    assert not path.exists()
    assert server.app[SERVICES].holder.current.config.api_keys == ("sk-keep-me-key-1",)  # still guarded
    # The whole file can still be put back through the API.
    text = "host: 127.0.0.1\napi-keys: [sk-keep-me-key-1]\n" + MANAGEMENT_BLOCK
    assert (await mgmt.put("/config.yaml", data=text.encode())).status == 200
    assert (path.stat().st_mode & 0o777) == 0o600  # a re-created config holds keys: owner only
    assert (await mgmt.put("/debug", json={"value": True})).status == 200
