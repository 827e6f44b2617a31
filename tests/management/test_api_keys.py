"""`/api-keys` list semantics; key objects in `api-keys` are left alone."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

CONFIG = (
    "host: 127.0.0.1\n"
    "api-keys:\n"
    '  - "sk-aaaa-0001" # first\n'
    "  - name: ci-bot\n"
    "    key: sk-object-key-0001\n"
    "    models: [gpt-*]\n"
    '  - "sk-bbbb-0002"\n' + MANAGEMENT_BLOCK
)


async def keys(mgmt: Mgmt) -> list[str]:
    reply = await mgmt.get("/api-keys")
    assert reply.status == 200
    result: list[str] = reply.json()["api-keys"]
    return result


def file_keys(tmp_path: Path) -> list[object]:
    result: list[object] = yaml.safe_load((tmp_path / "config.yaml").read_text())["api-keys"]
    return result


OBJECT = {"name": "ci-bot", "key": "sk-object-key-0001", "models": ["gpt-*"]}


async def test_get_lists_string_keys(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert await keys(mgmt) == ["sk-aaaa-0001", "sk-bbbb-0002"]


async def test_put_replaces_strings_and_keeps_objects(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.put("/api-keys", json=["sk-new-1", "sk-new-2"])).json() == {"status": "ok"}
    assert await keys(mgmt) == ["sk-new-1", "sk-new-2"]
    assert OBJECT in file_keys(tmp_path)
    assert (await mgmt.put("/api-keys", json={"items": ["sk-only"]})).status == 200
    assert await keys(mgmt) == ["sk-only"]
    assert (await mgmt.put("/api-keys", json=[])).status == 200  # a bare [] clears the list
    assert await keys(mgmt) == []
    assert file_keys(tmp_path) == [OBJECT]


async def test_put_errors(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    for body in ({"items": []}, {"items": "x"}, {"other": 1}, [1, 2], "text"):
        reply = await mgmt.put("/api-keys", json=body)
        assert (reply.status, reply.body) == (400, b'{"error":"invalid body"}'), body
    assert await keys(mgmt) == ["sk-aaaa-0001", "sk-bbbb-0002"]


async def test_patch(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.patch("/api-keys", json={"index": 1, "value": "sk-cccc"})).status == 200
    assert await keys(mgmt) == ["sk-aaaa-0001", "sk-cccc"]
    assert (await mgmt.patch("/api-keys", json={"old": "sk-aaaa-0001", "new": "sk-dddd"})).status == 200
    assert await keys(mgmt) == ["sk-dddd", "sk-cccc"]
    # `old` not found: `new` is appended.
    assert (await mgmt.patch("/api-keys", json={"old": "nope", "new": "sk-eeee"})).status == 200
    assert await keys(mgmt) == ["sk-dddd", "sk-cccc", "sk-eeee"]
    # An out-of-range index falls through to old/new, and without them it is an error.
    reply = await mgmt.patch("/api-keys", json={"index": 9, "value": "x"})
    assert (reply.status, reply.body) == (400, b'{"error":"missing fields"}')
    reply = await mgmt.patch("/api-keys", json={"value": "x"})
    assert (reply.status, reply.body) == (400, b'{"error":"missing fields"}')
    assert OBJECT in file_keys(tmp_path)
    assert "# first" in (tmp_path / "config.yaml").read_text()


async def test_delete(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    assert (await mgmt.delete("/api-keys?index=0")).status == 200
    assert await keys(mgmt) == ["sk-bbbb-0002"]
    assert "# first" not in (tmp_path / "config.yaml").read_text()  # the comment went with its key
    assert (await mgmt.delete("/api-keys?value=%20sk-bbbb-0002%20")).status == 200
    assert await keys(mgmt) == []
    assert (await mgmt.delete("/api-keys?value=not-there")).status == 200  # nothing matched: still ok
    reply = await mgmt.delete("/api-keys")
    assert (reply.status, reply.body) == (400, b'{"error":"missing index or value"}')
    reply = await mgmt.delete("/api-keys?index=5")
    assert (reply.status, reply.body) == (400, b'{"error":"missing index or value"}')
    assert file_keys(tmp_path) == [OBJECT]
