"""Provider key lists: GET with auth-index, PUT sanitising, PATCH/DELETE rules and errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

CONFIG = (
    """\
host: 127.0.0.1
gemini-api-key:
  - api-key: "AIza-one" # default endpoint
  - api-key: "AIza-one"
    base-url: "https://gemini.proxy.example"
claude-api-key:
  - api-key: "sk-ant-1"
  - api-key: "sk-ant-2"
    base-url: "https://claude.example"
    weight: 5
codex-api-key:
  - api-key: "sk-codex-1"
    base-url: "https://codex.example/v1"
vertex-api-key:
  - api-key: "vk-1"
    base-url: "https://vertex.example"
openai-compatibility:
  - name: "openrouter"
    base-url: "https://openrouter.ai/api/v1"
    api-key-entries:
      - api-key: "sk-or-1"
      - api-key: "sk-or-2"
    models:
      - name: "moonshotai/kimi-k2:free"
        alias: "kimi-k2"
"""
    + MANAGEMENT_BLOCK
)


def index(kind: str, base_url: str, api_key: str) -> str:
    return hashlib.sha256(f"{kind}:{base_url}+{api_key}".encode()).hexdigest()[:16]


def on_disk(tmp_path: Path, key: str) -> Any:
    return yaml.safe_load((tmp_path / "config.yaml").read_text()).get(key)


async def test_get_entries_with_auth_index(proxy: ProxyFactory) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    reply = await mgmt.get("/claude-api-key")
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    assert reply.json() == {
        "claude-api-key": [
            {"api-key": "sk-ant-1", "auth-index": index("claude-api-key", "", "sk-ant-1")},
            {
                "api-key": "sk-ant-2",
                "base-url": "https://claude.example",
                "weight": 5,
                "auth-index": index("claude-api-key", "https://claude.example", "sk-ant-2"),
            },
        ]
    }
    gemini = (await mgmt.get("/gemini-api-key")).json()["gemini-api-key"]
    assert [g["auth-index"] for g in gemini] == [
        index("gemini-api-key", "", "AIza-one"),
        index("gemini-api-key", "https://gemini.proxy.example", "AIza-one"),
    ]
    codex = (await mgmt.get("/codex-api-key")).json()["codex-api-key"]
    assert codex[0]["auth-index"] == index("codex-api-key", "https://codex.example/v1", "sk-codex-1")
    vertex = (await mgmt.get("/vertex-api-key")).json()["vertex-api-key"]
    assert vertex[0]["auth-index"] == index("vertex-api-key", "https://vertex.example", "vk-1")
    compat = (await mgmt.get("/openai-compatibility")).json()["openai-compatibility"]
    assert compat[0]["name"] == "openrouter"
    assert compat[0]["models"] == [{"name": "moonshotai/kimi-k2:free", "alias": "kimi-k2"}]
    assert [e["auth-index"] for e in compat[0]["api-key-entries"]] == [
        index("openai-compatibility", "https://openrouter.ai/api/v1", "sk-or-1"),
        index("openai-compatibility", "https://openrouter.ai/api/v1", "sk-or-2"),
    ]


async def test_put_sanitises_and_drops_auth_index(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    body = [
        {
            "api-key": " sk-ant-9 ",
            "auth-index": "0123456789abcdef",
            "prefix": "/team/",
            "headers": {" X-Team ": " blue ", "X-Empty": " "},
            "excluded-models": ["Claude-3-*", "claude-3-*", " "],
        },
        {"api-key": "sk-ant-10", "prefix": "a/b"},
    ]
    assert (await mgmt.put("/claude-api-key", json=body)).json() == {"status": "ok"}
    assert on_disk(tmp_path, "claude-api-key") == [
        {"api-key": "sk-ant-9", "prefix": "team", "headers": {"X-Team": "blue"}, "excluded-models": ["claude-3-*"]},
        {"api-key": "sk-ant-10"},
    ]
    # {"items": [...]} works too; codex entries without base-url are dropped.
    reply = await mgmt.put(
        "/codex-api-key", json={"items": [{"api-key": "a"}, {"api-key": "b", "base-url": "https://c.example"}]}
    )
    assert reply.status == 200
    assert on_disk(tmp_path, "codex-api-key") == [{"api-key": "b", "base-url": "https://c.example"}]
    # gemini: duplicates and entries with neither api-key nor base-url are dropped.
    reply = await mgmt.put("/gemini-api-key", json=[{"api-key": "g"}, {"api-key": "g"}, {"prefix": "p"}])
    assert reply.status == 200
    assert on_disk(tmp_path, "gemini-api-key") == [{"api-key": "g"}]
    # openai-compatibility without base-url is dropped.
    reply = await mgmt.put(
        "/openai-compatibility",
        json=[{"name": "a"}, {"name": "b", "base-url": "https://b.example/v1", "api-key-entries": [{"api-key": "k"}]}],
    )
    assert reply.status == 200
    assert [p["name"] for p in on_disk(tmp_path, "openai-compatibility")] == ["b"]


@pytest.mark.parametrize(
    ("url", "body", "error"),
    [
        ("/claude-api-key", {"items": []}, "invalid body"),
        ("/claude-api-key", {"x": 1}, "invalid body"),
        ("/claude-api-key", ["sk"], "invalid body"),
        (
            "/claude-api-key",
            [{"api-key": "a"}, {"api-key": "b", "weight": 1_000_001}],
            "claude-api-key[1].weight: must be at most 1000000",
        ),
        ("/gemini-api-key", [{"api-key": "a", "weight": "5"}], "gemini-api-key[0].weight: must be an integer"),
        (
            "/vertex-api-key",
            [{"api-key": "v"}, {"base-url": "https://v.example"}],
            "vertex-api-key[1].api-key is required",
        ),
        (
            "/openai-compatibility",
            [
                {
                    "name": "n",
                    "base-url": "https://n.example",
                    "api-key-entries": [{"api-key": "k", "weight": 2_000_000}],
                }
            ],
            "openai-compatibility[0].api-key-entries[0].weight: must be at most 1000000",
        ),
    ],
)
async def test_put_errors(proxy: ProxyFactory, tmp_path: Path, url: str, body: Any, error: str) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    before = (tmp_path / "config.yaml").read_bytes()
    reply = await mgmt.put(url, json=body)
    assert (reply.status, reply.json()) == (400, {"error": error})
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_patch(proxy: ProxyFactory, tmp_path: Path) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    reply = await mgmt.patch("/claude-api-key", json={"match": "sk-ant-2", "value": {"weight": None, "prefix": "x"}})
    assert reply.json() == {"status": "ok"}
    assert on_disk(tmp_path, "claude-api-key")[1] == {
        "api-key": "sk-ant-2",
        "base-url": "https://claude.example",
        "prefix": "x",
    }
    reply = await mgmt.patch("/claude-api-key", json={"index": 0, "value": {"disable-cooling": True}})
    assert reply.status == 200
    assert on_disk(tmp_path, "claude-api-key")[0] == {"api-key": "sk-ant-1", "disable-cooling": True}
    # gemini: an ambiguous match needs ?base-url= (empty means "no base-url") or an index.
    reply = await mgmt.patch("/gemini-api-key", json={"match": "AIza-one", "value": {"weight": 2}})
    assert (reply.status, reply.json()) == (400, {"error": "multiple items match; index is required"})
    reply = await mgmt.patch("/gemini-api-key?base-url=", json={"match": "AIza-one", "value": {"weight": 2}})
    assert reply.status == 200
    assert on_disk(tmp_path, "gemini-api-key")[0] == {"api-key": "AIza-one", "weight": 2}
    # A gemini entry left with neither api-key nor base-url is deleted.
    reply = await mgmt.patch("/gemini-api-key", json={"index": 0, "value": {"api-key": ""}})
    assert reply.status == 200
    assert on_disk(tmp_path, "gemini-api-key") == [{"api-key": "AIza-one", "base-url": "https://gemini.proxy.example"}]
    # vertex: api-key "" deletes the entry.
    assert (await mgmt.patch("/vertex-api-key", json={"match": "vk-1", "value": {"api-key": " "}})).status == 200
    assert on_disk(tmp_path, "vertex-api-key") == []


@pytest.mark.parametrize(
    ("url", "body", "status", "error"),
    [
        ("/claude-api-key", {"match": "nope", "value": {"weight": 1}}, 404, "item not found"),
        ("/claude-api-key", {"index": 7, "value": {"weight": 1}}, 404, "item not found"),
        ("/claude-api-key", {"index": 0}, 400, "invalid body"),
        ("/claude-api-key", {"index": 0, "value": [1]}, 400, "invalid body"),
        ("/claude-api-key", {"index": 0, "value": {"weight": "x"}}, 400, "weight must be an integer"),
        ("/codex-api-key", {"index": 0, "value": {"weight": 1_000_001}}, 400, "weight must be at most 1000000"),
        ("/gemini-api-key", {"match": "zzz", "value": {}}, 404, "item not found"),
        ("/openai-compatibility", {"name": "nope", "value": {}}, 404, "item not found"),
        ("/openai-compatibility", {"name": "openrouter"}, 400, "invalid body"),
    ],
)
async def test_patch_errors(proxy: ProxyFactory, tmp_path: Path, url: str, body: Any, status: int, error: str) -> None:
    mgmt = Mgmt(await proxy(CONFIG))
    before = (tmp_path / "config.yaml").read_bytes()
    reply = await mgmt.patch(url, json=body)
    assert (reply.status, reply.json()) == (status, {"error": error})
    assert (tmp_path / "config.yaml").read_bytes() == before


async def test_delete(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    reply = await mgmt.delete("/gemini-api-key?api-key=AIza-one")
    assert (reply.status, reply.json()) == (400, {"error": "multiple items match api-key; base-url is required"})
    assert (await mgmt.delete("/gemini-api-key?api-key=AIza-one&base-url=")).status == 200
    assert on_disk(tmp_path, "gemini-api-key") == [{"api-key": "AIza-one", "base-url": "https://gemini.proxy.example"}]
    reply = await mgmt.delete("/gemini-api-key?api-key=missing")
    assert (reply.status, reply.json()) == (404, {"error": "item not found"})
    # claude, codex and vertex answer 200 even when nothing matched.
    assert (await mgmt.delete("/claude-api-key?api-key=missing")).json() == {"status": "ok"}
    assert (await mgmt.delete("/claude-api-key?api-key=sk-ant-2&base-url=https://claude.example")).status == 200
    assert (await mgmt.delete("/claude-api-key?index=0")).status == 200
    assert on_disk(tmp_path, "claude-api-key") == []
    assert len(server.app[SERVICES].holder.current.config.claude_api_key) == 0
    reply = await mgmt.delete("/codex-api-key")
    assert (reply.status, reply.json()) == (400, {"error": "missing api-key or index"})
    reply = await mgmt.delete("/vertex-api-key?index=3")
    assert (reply.status, reply.json()) == (400, {"error": "missing api-key or index"})


async def test_openai_compatibility_patch_and_delete(proxy: ProxyFactory, tmp_path: Path) -> None:
    config = CONFIG.replace(
        "openai-compatibility:\n",
        'openai-compatibility:\n  - name: "local"\n    base-url: "http://127.0.0.1:9/v1"\n',
    )
    mgmt = Mgmt(await proxy(config))
    reply = await mgmt.patch(
        "/openai-compatibility",
        json={
            "name": "openrouter",
            "value": {"prefix": "or", "api-key-entries": [{"api-key": "sk-or-3", "auth-index": "x"}]},
        },
    )
    assert reply.status == 200
    provider = on_disk(tmp_path, "openai-compatibility")[1]
    assert provider["prefix"] == "or" and provider["api-key-entries"] == [{"api-key": "sk-or-3"}]
    reply = await mgmt.patch(
        "/openai-compatibility", json={"index": 1, "value": {"api-key-entries": [{"api-key": "k", "weight": "heavy"}]}}
    )
    assert (reply.status, reply.json()) == (400, {"error": "api-key-entries[0].weight: must be an integer"})
    # Setting base-url to "" deletes the provider.
    assert (await mgmt.patch("/openai-compatibility", json={"index": 0, "value": {"base-url": ""}})).status == 200
    assert [p["name"] for p in on_disk(tmp_path, "openai-compatibility")] == ["openrouter"]
    reply = await mgmt.delete("/openai-compatibility")
    assert (reply.status, reply.json()) == (400, {"error": "missing name or index"})
    assert (await mgmt.delete("/openai-compatibility?name=openrouter")).status == 200
    assert on_disk(tmp_path, "openai-compatibility") == []


async def test_auth_index_joins_with_the_routing_credentials(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    catalog = {c.auth_index for c in server.app[SERVICES].holder.current.catalog.credentials}
    for kind in ("gemini-api-key", "claude-api-key", "codex-api-key", "vertex-api-key"):
        for entry in (await mgmt.get(f"/{kind}")).json()[kind]:
            assert entry["auth-index"] in catalog, (kind, entry)
    for provider in (await mgmt.get("/openai-compatibility")).json()["openai-compatibility"]:
        for entry in provider["api-key-entries"]:
            assert entry["auth-index"] in catalog
