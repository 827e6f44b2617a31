"""`/usage`, `/usage-queue` and `/reset-quota` over HTTP, fed through the real usage store."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from cliproxy.clientkeys import redact
from cliproxy.routing.failures import Failure
from cliproxy.routing.health import CoolingSettings
from cliproxy.server.services import SERVICES
from cliproxy.translate import Dialect
from cliproxy.usage import UsageRecord
from tests.conftest import ProxyFactory
from tests.fakes.fixtures import CLIENT_KEY, Starter, start_proxy, upstream
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt

__all__ = ["start_proxy", "upstream"]  # fixtures

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
    store = server.app[SERVICES].usage
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
    # Per-model totals sum over every key that used the model.
    claude = usage["models"]["claude-sonnet-4-5"]
    assert (claude["total_requests"], claude["failure_count"], claude["total_tokens"]) == (2, 1, 18)
    assert usage["apis"]["sk-…aaaa"]["total_tokens"] == 30
    # A viewer may read the totals.
    assert (await Mgmt(server, key=VIEWER).get("/usage")).status == 200


async def test_usage_queue_pops_oldest_first(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    for n in range(3):
        server.app[SERVICES].usage.add(record(request_id=f"req_{n}"))
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
    server.app[SERVICES].usage.add(record())
    mgmt = Mgmt(server)
    assert (await mgmt.get("/usage-queue?count=5")).json() == []
    assert (await mgmt.get("/usage")).json()["usage"]["total_requests"] == 1  # totals are always kept


async def test_reset_quota_clears_cooldowns(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    (entry,) = (await mgmt.get("/claude-api-key")).json()["claude-api-key"]
    cred = next(
        c for c in server.app[SERVICES].holder.current.catalog.credentials if c.auth_index == entry["auth-index"]
    )
    health = server.app[SERVICES].health
    for model in ("claude-sonnet-4-5", "claude-opus-4-1"):
        await health.failed(cred.id, model, Failure(429, b"", Dialect.CLAUDE), CoolingSettings(False, 0))
    reply = await mgmt.post("/reset-quota", json={"auth_index": entry["auth-index"]})
    assert reply.json() == {
        "status": "ok",
        "auth_index": entry["auth-index"],
        "models": ["claude-opus-4-1", "claude-sonnet-4-5"],
    }
    assert not any(c.credential_id == cred.id for c in health.snapshot())
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
    server.app[SERVICES].usage.add(record(auth_index=claude["auth-index"]))
    server.app[SERVICES].usage.add(record(auth_index=claude["auth-index"], failed=True, status=500))
    data = (await mgmt.get("/api-key-usage")).json()
    entry = data["claude"]["|sk-ant-usage-key"]
    assert (entry["success"], entry["failed"], len(entry["recent_requests"])) == (1, 1, 20)
    assert data["openrouter"]["https://or.example/v1|sk-or-1"]["success"] == 0
    viewer = (await Mgmt(server, key=VIEWER).get("/api-key-usage")).json()
    assert "sk-ant-usage-key" not in str(viewer) and "|sk-…-key" in str(viewer)


async def test_a_real_request_shows_in_usage_and_the_queue(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """Through `/v1` with the OpenAI SDK against a fake upstream: the totals count it and the queue
    holds one record in CLIProxyAPI's shape, tied to the response's X-Request-Id."""
    fake, base = upstream
    proxy = await start_proxy(
        f"""
usage-statistics-enabled: true
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-up-usage-1
    models:
      - name: gpt-fake
{MANAGEMENT_BLOCK}"""
    )
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="high",
        service_tier="flex",
        extra_headers={"X-Forwarded-For": "203.0.113.9"},
    )
    completion = raw.parse()
    assert completion.usage is not None
    fake.fail(500, times=1)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "again"}])

    mgmt = Mgmt(proxy.server)
    usage = (await mgmt.get("/usage")).json()["usage"]
    assert (usage["total_requests"], usage["success_count"], usage["failure_count"]) == (2, 1, 1)
    assert usage["models"]["gpt-fake"]["total_requests"] == 2
    assert usage["total_tokens"] >= completion.usage.total_tokens > 0

    ok, failed = (await mgmt.get("/usage-queue?count=5")).json()
    expected_keys = {
        "timestamp", "latency_ms", "ttft_ms", "source", "auth_index", "client_ip", "x_forwarded_for", "user_agent",
        "tokens", "failed", "generate", "fail", "accounting_version", "token_breakdown", "provider", "executor_type",
        "model", "alias", "endpoint", "auth_type", "api_key", "request_id", "reasoning_effort", "service_tier",
    }  # fmt: skip
    assert expected_keys <= set(ok)
    assert ok["request_id"] == raw.headers["X-Request-Id"]
    assert ok["tokens"]["total_tokens"] == completion.usage.total_tokens
    assert ok["tokens"]["input_tokens"] == completion.usage.prompt_tokens
    assert (ok["client_ip"], ok["x_forwarded_for"]) == ("127.0.0.1", "203.0.113.9")
    assert ok["user_agent"].startswith("AsyncOpenAI/Python")
    assert (ok["reasoning_effort"], ok["service_tier"]) == ("high", "flex")
    assert (ok["model"], ok["alias"], ok["endpoint"]) == ("gpt-fake", "gpt-fake", "/v1/chat/completions")
    assert ok["api_key"] == redact(CLIENT_KEY) and CLIENT_KEY not in json.dumps(ok)
    assert ok["fail"] == {"status_code": 200, "body": ""} and ok["failed"] is False
    assert failed["failed"] is True and failed["fail"]["status_code"] == 500
    runtime = proxy.server.app[SERVICES].holder.current
    (cred,) = [c for c in runtime.catalog.credentials if c.api_key == "sk-up-usage-1"]
    assert ok["auth_index"] == cred.auth_index
