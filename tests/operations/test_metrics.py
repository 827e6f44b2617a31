"""`/metrics` after real SDK traffic: success, a stream, failover, a cooldown, a timeout, a request
fault, a WebSocket and refused requests, read back with `prometheus_client`'s own parser and
checked against what the usage records and the fake upstream saw."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from cliproxy import __version__
from cliproxy.server.services import SERVICES
from tests.fakes.fixtures import Clock, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.operations.scrape import key_hash, scrape, total, value

ALICE = "sk-alice-0123456789abcdef"
PLAIN = "sk-plain-0123456789abcdef"
MODEL = "gpt-4o-mini"  # priced in litellm's table, so the cost counter moves
CHAT = "/v1/chat/completions"


def config(base: str, extra: str = "") -> str:
    return f"""
api-keys:
  - name: alice
    key: {ALICE}
  - {PLAIN}
transient-error-cooldown-seconds: 60
upstream-timeouts:
  first-byte-seconds: 0.4
{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-up-a
      - api-key: sk-up-b
    models:
      - name: {MODEL}
"""


def sdk(proxy: Proxy, key: str = ALICE) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)


async def ask(proxy: Proxy, key: str = ALICE) -> str | None:
    answer = await sdk(proxy, key).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    return answer.choices[0].message.content


def credential_ids(proxy: Proxy) -> dict[str, Any]:
    """Upstream key → its routing credential (id, provider)."""
    runtime = proxy.server.app[SERVICES].holder.current
    return {cred.api_key: cred for cred in runtime.catalog.credentials}


def first_key(fake: FakeUpstream, index: int) -> str:
    return str(fake.seen[index].header("Authorization")).removeprefix("Bearer ")


async def test_metrics_count_real_traffic(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(config(base), clock=clock)
    services = proxy.server.app[SERVICES]
    table = await services.prices.get()  # the cost of each record is known when it is written
    creds = credential_ids(proxy)
    provider = creds["sk-up-a"].provider

    # Two answers for alice, one stream for the plain key.
    assert await ask(proxy) == await ask(proxy) == "Hello from fake"
    stream = await sdk(proxy, PLAIN).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "Hello from fake"

    # A 503 cools its credential down; the request moves on to the other one.
    seen = len(fake.seen)
    fake.fail(503, times=1)
    assert await ask(proxy) == "Hello from fake"
    cooled, rescuer = first_key(fake, seen), first_key(fake, seen + 1)
    assert cooled != rescuer
    during = await scrape(proxy.url)
    cooled_id = creds[cooled].id
    assert (
        value(during, "cliproxy_credential_cooldown_seconds", provider=provider, credential=cooled_id, model=MODEL)
        == 60
    )
    assert value(during, "cliproxy_credentials", provider=provider, state="cooling") == 1
    assert value(during, "cliproxy_credentials", provider=provider, state="active") == 1
    assert value(during, "cliproxy_credentials", provider=provider, state="disabled") == 0
    clock.advance(61)  # the cooldown runs out by itself

    # 501 moves on without a cooldown (failover); 400 is the client's fault and ends the request (error).
    fake.fail(501, times=1)
    assert await ask(proxy) == "Hello from fake"
    fake.fail(400, times=1)
    with pytest.raises(openai.BadRequestError):
        await ask(proxy)

    # Both credentials too slow for `first-byte-seconds`: two timeouts, a 504 for the client.
    fake.delay = 1.0
    with pytest.raises(openai.APIStatusError) as info:
        await ask(proxy)
    assert info.value.status_code == 504
    fake.delay = 0.0
    clock.advance(61)

    # One Responses WebSocket session with one response in it.
    async with sdk(proxy).responses.connect() as conn:
        await conn.response.create(model=MODEL, input="hi")
        async for event in conn:
            if event.type in ("response.completed", "error"):
                assert event.type == "response.completed"
                break
        with_socket = await scrape(proxy.url)
    assert value(with_socket, "cliproxy_websocket_sessions") == 1

    # Refused before routing: a wrong key (no key label), an unknown model (alice's).
    with pytest.raises(openai.AuthenticationError):
        await ask(proxy, "sk-wrong-key-000000")
    with pytest.raises(openai.BadRequestError, match="unknown provider"):
        await sdk(proxy).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])

    samples = await scrape(proxy.url)
    requests = "cliproxy_requests_total"
    plain = key_hash(PLAIN)
    assert value(samples, requests, route=CHAT, dialect="chat", status="200", client_key="alice", model=MODEL) == 4
    assert value(samples, requests, route=CHAT, dialect="chat", status="200", client_key=plain, model=MODEL) == 1
    assert value(samples, requests, route=CHAT, dialect="chat", status="400", client_key="alice", model=MODEL) == 1
    assert value(samples, requests, route=CHAT, dialect="chat", status="504", client_key="alice", model=MODEL) == 1
    ws = {"route": "/v1/responses", "dialect": "responses", "status": "200", "client_key": "alice", "model": MODEL}
    assert value(samples, requests, **ws) == 1
    assert value(samples, requests, route=CHAT, dialect="chat", status="401", client_key="none", model="") == 1
    assert value(samples, requests, route=CHAT, dialect="chat", status="400", client_key="alice", model="") == 1
    assert total(samples, requests) == 10
    assert ALICE not in str(samples) and PLAIN not in str(samples)

    attempts = "cliproxy_upstream_attempts_total"
    outcomes = {
        outcome: total(samples, attempts, provider=provider, outcome=outcome)
        for outcome in ("ok", "failover", "cooldown", "timeout", "error")
    }
    assert outcomes == {"ok": 6, "failover": 1, "cooldown": 1, "timeout": 2, "error": 1}
    assert value(samples, attempts, provider=provider, credential=cooled_id, outcome="cooldown") == 1
    assert value(samples, attempts, provider=provider, credential=creds[rescuer].id, outcome="ok") >= 1
    assert total(samples, attempts) == len(fake.seen)  # every upstream request is one attempt

    # Histograms: one observation per routed request, with sums that match the usage records.
    records = list(proxy.usage)
    assert len(records) == 8
    chat = [r for r in records if r.client_dialect == "chat"]
    duration = "cliproxy_request_duration_seconds"
    assert value(samples, duration + "_count", dialect="chat", model=MODEL) == len(chat)
    assert value(samples, duration + "_sum", dialect="chat", model=MODEL) == pytest.approx(
        sum(r.latency_ms for r in chat) / 1000
    )
    assert value(samples, duration + "_bucket", dialect="chat", model=MODEL, le="+Inf") == len(chat)
    ttfb = "cliproxy_time_to_first_byte_seconds"
    answered = [r for r in chat if r.ttft_ms is not None]
    assert len(answered) == 5
    assert value(samples, ttfb + "_count", dialect="chat", model=MODEL) == len(answered)
    assert value(samples, ttfb + "_count", dialect="responses", model=MODEL) == 1

    # Tokens and cost by key, as the upstream reported them and litellm's table prices them.
    tokens = "cliproxy_tokens_total"
    for label, key_id in (("alice", "alice"), (plain, "sk-…cdef")):
        mine = [r for r in records if r.client_key == key_id]
        assert mine, key_id
        for kind, field in (("input", "input_tokens"), ("output", "output_tokens"), ("cached", "cached_tokens")):
            expected = sum(getattr(r, field) for r in mine)
            assert value(samples, tokens, client_key=label, model=MODEL, kind=kind) == expected
    assert value(samples, tokens, client_key="alice", model=MODEL, kind="output") >= 5 * 3
    one = table.cost(MODEL, input_tokens=5, output_tokens=3, cached_tokens=2)
    assert one is not None and one > 0
    alice_cost = sum(r.cost_usd or 0.0 for r in records if r.client_key == "alice")
    assert alice_cost >= 4 * one  # four answers, and the WebSocket's
    assert value(samples, "cliproxy_cost_usd_total", client_key="alice", model=MODEL) == pytest.approx(alice_cost)

    assert value(samples, "cliproxy_inflight_requests") == 0
    assert value(samples, "cliproxy_websocket_sessions") == 0
    assert value(samples, "cliproxy_build_info", version=__version__) == 1


async def test_a_stream_in_flight_is_counted_until_it_ends(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    fake.hold = True
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(proxy.url + CHAT, json=body, headers={"Authorization": f"Bearer {ALICE}"})
        assert resp.status == 200
        assert (await resp.content.readany()).startswith(b"data:")
        assert value(await scrape(proxy.url), "cliproxy_inflight_requests") == 1
        fake.resume.set()
        await resp.read()
        resp.release()
    for _ in range(100):
        if proxy.usage.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    samples = await scrape(proxy.url)
    assert value(samples, "cliproxy_inflight_requests") == 0
    assert value(samples, "cliproxy_time_to_first_byte_seconds_count", dialect="chat", model=MODEL) == 1


async def test_model_and_key_labels_are_capped(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    models = "".join(f"      - name: m{i}\n" for i in range(4))
    proxy = await start_proxy(
        f"""
api-keys: [{ALICE}]
metrics:
  max-label-values: 2
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-up-a}}]
    models:
{models}"""
    )
    for i in range(4):
        answer = await sdk(proxy).chat.completions.create(model=f"m{i}", messages=[{"role": "user", "content": "x"}])
        assert answer.choices
    samples = await scrape(proxy.url)
    by_model = {
        dict(labels)["model"]: v
        for (name, labels), v in samples.items()
        if name == "cliproxy_requests_total" and dict(labels)["status"] == "200"
    }
    assert by_model == {"m0": 1, "m1": 1, "other": 2}


async def test_disabled_metrics_answer_404_and_count_nothing(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, "metrics:\n  enabled: false"))
    assert await ask(proxy) == "Hello from fake"
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/metrics") as resp:
        assert resp.status == 404
    metrics = proxy.server.app[SERVICES].metrics
    metrics.requests.fold()
    assert metrics.families.requests.values == {} and metrics.families.duration.values == {}


async def test_turning_metrics_off_by_reload_closes_the_endpoint(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    assert await ask(proxy) == "Hello from fake"
    assert total(await scrape(proxy.url), "cliproxy_requests_total") == 1
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text() + "metrics:\n  enabled: false\n")
    assert (await proxy.server.app[SERVICES].reloader.reload_now()).ok
    assert await ask(proxy) == "Hello from fake"
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/metrics") as resp:
        assert resp.status == 404
    metrics = proxy.server.app[SERVICES].metrics
    metrics.requests.fold()
    assert sum(metrics.families.requests.values.values()) == 1  # the second request was not counted
