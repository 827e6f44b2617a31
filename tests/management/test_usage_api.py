"""`/usage`, `/usage-queue` and `/reset-quota` over HTTP, fed through the real usage store."""

from __future__ import annotations

import time
from typing import Any

from cliproxy.appkeys import ROUTING, RUNTIME, USAGE
from cliproxy.routing.scheduler import RoutingState
from cliproxy.usage import UsageRecord
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt

CONFIG = (
    "host: 127.0.0.1\n"
    "usage-statistics-enabled: true\n"
    "claude-api-key:\n  - api-key: sk-ant-usage-key\n" + MANAGEMENT_BLOCK
)


def record(**overrides: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "timestamp": time.time(),
        "request_id": "req_1",
        "client_key": "sk-…aaaa",
        "credential_id": "claude-api-key[0]",
        "auth_index": "0123456789abcdef",
        "provider": "claude",
        "model": "claude-sonnet-4-5-20250929",
        "alias": "claude-sonnet-4-5",
        "client_dialect": "chat",
        "upstream_dialect": "claude",
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "failed": False,
        "latency_ms": 812.4,
        "ttft_ms": 120.2,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 2,
        "total_tokens": 15,
    }
    fields.update(overrides)
    return UsageRecord(**fields)


async def test_usage_totals_per_key_credential_and_model(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    store = server.app[USAGE]
    store.add(record())
    store.add(record(client_key="ci-bot", failed=True, status=529, input_tokens=3, output_tokens=0, total_tokens=3))
    store.add(record(alias="gpt-5", model="gpt-5", auth_index="fedcba9876543210", credential_id="codex-api-key[0]"))
    reply = await Mgmt(server).get("/usage")
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    usage = reply.json()["usage"]
    assert (usage["total_requests"], usage["success_count"], usage["failure_count"]) == (3, 2, 1)
    assert usage["total_tokens"] == 33
    assert usage["apis"]["sk-…aaaa"]["total_requests"] == 2
    assert usage["apis"]["ci-bot"]["models"]["claude-sonnet-4-5"]["failure_count"] == 1
    assert usage["credentials"]["0123456789abcdef"]["total_requests"] == 2
    assert usage["credentials"]["0123456789abcdef"]["credential_id"] == "claude-api-key[0]"
    assert usage["models"]["gpt-5"]["total_requests"] == 1
    # A viewer may read the totals.
    assert (await Mgmt(server, key=VIEWER).get("/usage")).status == 200


async def test_usage_queue_pops_oldest_first(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    for n in range(3):
        server.app[USAGE].add(record(request_id=f"req_{n}"))
    reply = await mgmt.get("/usage-queue")
    assert reply.status == 200
    (first,) = reply.json()
    assert first["request_id"] == "req_0"
    assert first["tokens"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "reasoning_tokens": 0,
        "cached_tokens": 2,
        "cache_read_tokens": 2,
        "cache_read_tokens_present": True,
        "cache_creation_tokens": 0,
        "total_tokens": 15,
    }
    assert first["fail"] == {"status_code": 200, "body": ""}
    assert first["failed"] is False and first["auth_index"] == "0123456789abcdef"
    assert (first["model"], first["alias"]) == ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
    assert first["api_key"] == "sk-…aaaa" and first["endpoint"] == "/v1/chat/completions"
    assert first["timestamp"].endswith("Z") and first["latency_ms"] == 812
    rest = (await mgmt.get("/usage-queue?count=10")).json()
    assert [r["request_id"] for r in rest] == ["req_1", "req_2"]
    assert (await mgmt.get("/usage-queue?count=5")).json() == []
    for bad in ("0", "-1", "abc", "1.5"):
        reply = await mgmt.get(f"/usage-queue?count={bad}")
        assert (reply.status, reply.json()) == (400, {"error": "count must be a positive integer"})


async def test_usage_queue_is_empty_while_statistics_are_off(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG.replace("usage-statistics-enabled: true", "usage-statistics-enabled: false"))
    server.app[USAGE].add(record())
    mgmt = Mgmt(server)
    assert (await mgmt.get("/usage-queue?count=5")).json() == []
    assert (await mgmt.get("/usage")).json()["usage"]["total_requests"] == 1  # totals are always kept


async def test_reset_quota_clears_cooldowns(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    (entry,) = (await mgmt.get("/claude-api-key")).json()["claude-api-key"]
    cred = next(c for c in server.app[RUNTIME].current.catalog.credentials if c.auth_index == entry["auth-index"])
    state: RoutingState = server.app[ROUTING]
    state.failure(cred.id, "claude-sonnet-4-5", 429)
    state.failure(cred.id, "claude-opus-4-1", 429)
    reply = await mgmt.post("/reset-quota", json={"auth_index": entry["auth-index"]})
    assert reply.json() == {
        "status": "ok",
        "auth_index": entry["auth-index"],
        "models": ["claude-opus-4-1", "claude-sonnet-4-5"],
    }
    assert not any(key[0] == cred.id for key in state.cooldowns)
    reply = await mgmt.post("/reset-quota", json={})
    assert (reply.status, reply.json()) == (400, {"error": "auth_index is required"})
    reply = await mgmt.post("/reset-quota", json={"auth_index": "nope"})
    assert (reply.status, reply.json()) == (404, {"error": "auth not found"})


async def test_api_key_usage_per_config_key(proxy: ProxyFactory) -> None:
    config = CONFIG + (
        'openai-compatibility:\n  - name: "OpenRouter"\n    base-url: "https://or.example/v1"\n'
        "    api-key-entries:\n      - api-key: sk-or-1\n"
    )
    server = await proxy(config)
    mgmt = Mgmt(server)
    (claude,) = (await mgmt.get("/claude-api-key")).json()["claude-api-key"]
    server.app[USAGE].add(record(auth_index=claude["auth-index"]))
    server.app[USAGE].add(record(auth_index=claude["auth-index"], failed=True, status=500))
    data = (await mgmt.get("/api-key-usage")).json()
    entry = data["claude"]["|sk-ant-usage-key"]
    assert (entry["success"], entry["failed"], len(entry["recent_requests"])) == (1, 1, 20)
    assert data["openrouter"]["https://or.example/v1|sk-or-1"]["success"] == 0
