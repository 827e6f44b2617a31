"""Failover, request faults, cooldowns and retry rounds through the real app."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.fixtures import CLIENT_KEY, Clock, Proxy, Starter, hang_up_mid_stream
from tests.fakes.upstreams import FakeUpstream

KEYS = ("sk-up-a", "sk-up-b", "sk-up-c")


def compat(base: str, *, keys: tuple[str, ...] = KEYS, extra: str = "") -> str:
    entries = "\n".join(f"      - api-key: {k}" for k in keys)
    return f"""
{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
{entries}
    models:
      - name: gpt-fake
"""


async def ask_claude(proxy: Proxy) -> tuple[int, Any]:
    """A raw Anthropic Messages request for `claude-fake`: (status, parsed body)."""
    body = {"model": "claude-fake", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.url + "/v1/messages", json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def client(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


async def ask(proxy: Proxy) -> str | None:
    answer = await client(proxy).chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "x"}])
    return answer.choices[0].message.content


@pytest.mark.parametrize("status", [429, 500, 502, 503, 401, 403])
async def test_failure_moves_to_next_credential(
    status: int, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    fake.fail(status, times=1)
    assert await ask(proxy) == "Hello from fake"
    assert len(fake.seen) == 2
    first, second = (s.header("Authorization") for s in fake.seen)
    assert first != second


async def test_stream_fails_over_before_first_byte(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    fake.fail(503, times=2)
    stream = await client(proxy).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "Hello from fake"
    assert len(fake.seen) == 3


@pytest.mark.parametrize("status", [400, 409, 413, 422])
async def test_request_fault_is_not_retried(
    status: int, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, extra="request-retry: 3"))
    fake.fail(status, times=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await ask(proxy)
    assert caught.value.status_code == status
    assert caught.value.body["message"] == f"fake upstream error {status}"  # type: ignore[index]
    assert len(fake.seen) == 1
    assert not proxy.health.snapshot()


async def test_invalid_request_body_type_is_a_fault_even_on_500(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    body = b'{"error":{"message":"too long","type":"context_length_exceeded"}}'
    fake.fail(500, body=body, times=0)
    with pytest.raises(openai.InternalServerError):
        await ask(proxy)
    assert len(fake.seen) == 1


async def test_all_failing_returns_last_upstream_error(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    fake.fail(500, times=0)
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(proxy)
    assert caught.value.body["message"] == "fake upstream error 500"  # type: ignore[index]
    assert len(fake.seen) == 3  # each credential once, no retry rounds by default


async def test_cooldown_then_expiry_with_injected_clock(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base, keys=("sk-up-a",)), clock=clock)
    fake.fail(429, times=1)
    with pytest.raises(openai.RateLimitError):
        await ask(proxy)
    assert len(fake.seen) == 1
    # cooling: no upstream call, a 429 in the client's dialect with Retry-After
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        ) as resp,
    ):
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        error = (await resp.json())["error"]
    assert error["code"] == "model_cooldown" and error["model"] == "gpt-fake"
    assert error["reset_seconds"] == 1 and error["provider"] == "openai-compatible-fake"
    assert len(fake.seen) == 1
    clock.advance(1.5)  # the cooldown clears itself: no timer, no restart
    assert await ask(proxy) == "Hello from fake"
    assert not proxy.health.snapshot()  # success reset the backoff


async def test_retry_after_hint_sets_cooldown(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base, keys=("sk-up-a",)), clock=clock)
    fake.fail(429, headers={"Retry-After": "42"}, times=1)
    with pytest.raises(openai.RateLimitError):
        await ask(proxy)
    (entry,) = proxy.health.snapshot()
    assert entry.seconds == 42
    clock.advance(41)
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(proxy)
    assert caught.value.response.headers["Retry-After"] == "1"
    clock.advance(1)
    assert await ask(proxy) == "Hello from fake"


async def test_transient_and_auth_cooldown_durations(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    clock = Clock()
    proxy = await start_proxy(compat(base, keys=("sk-up-a", "sk-up-b")), clock=clock)
    fake.fail(500, key="sk-up-a", times=1)
    fake.fail(401, key="sk-up-b", times=1)
    with pytest.raises(openai.APIStatusError):
        await ask(proxy)
    remaining = sorted(round(e.seconds) for e in proxy.health.snapshot())
    assert remaining == [60, 1800]


async def test_disable_cooling(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, keys=("sk-up-a",), extra="disable-cooling: true"))
    fake.fail(429, times=1)
    with pytest.raises(openai.RateLimitError):
        await ask(proxy)
    assert not proxy.health.snapshot()
    assert await ask(proxy) == "Hello from fake"


async def test_retry_rounds_per_credential_counts(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    """As CLIProxyAPI's own tests pin it: global request-retry 3, per-credential 3, 2, 2 → 4, 3, 3 calls."""
    fake, base = upstream
    entries = "\n".join(
        f"  - api-key: {key}\n    base-url: {base}\n    request-retry: {retry}\n    models: [{{name: claude-fake}}]"
        for key, retry in (("sk-a", 3), ("sk-b", 2), ("sk-c", 2))
    )
    proxy = await start_proxy(f"request-retry: 3\ndisable-cooling: true\nclaude-api-key:\n{entries}\n")
    fake.fail(503, times=0, dialect="claude")
    status, body = await ask_claude(proxy)
    assert status == 503 and body["type"] == "error"
    assert [len(fake.calls(k)) for k in ("sk-a", "sk-b", "sk-c")] == [4, 3, 3]


async def test_no_enabled_credentials_is_unknown_model(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(
        f"claude-api-key:\n  - api-key: sk-a\n    base-url: {base}\n    disabled: true\n    models: [{{name: c1}}]\n"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            proxy.url + "/v1/messages",
            json={"model": "c1", "max_tokens": 5, "messages": []},
            headers={"x-api-key": CLIENT_KEY},
        ) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert body["type"] == "error" and "unknown provider for model c1" in body["error"]["message"]


async def test_client_disconnect_cancels_upstream(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(compat(base, keys=("sk-up-a",)))
    body = {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    await hang_up_mid_stream(proxy, fake, "/v1/chat/completions", b"data: ", json=body, headers=headers)


async def test_upstream_redirect_is_not_followed_and_fails_over(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """A 307 would re-send the upstream key to whatever address it names: the next credential answers
    instead, and with only redirects left the client gets a 502 that names the redirect."""
    fake, base = upstream
    proxy = await start_proxy(compat(base))
    fake.fail(307, body=b"", headers={"Location": "https://elsewhere.example/v1/chat/completions"}, times=1)
    assert await ask(proxy) == "Hello from fake"
    assert len(fake.seen) == 2
    fake.fail(307, body=b"", headers={"Location": "https://elsewhere.example/v1/chat/completions"}, times=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await ask(proxy)
    assert caught.value.status_code == 502
    assert "redirected (307) to https://elsewhere.example/v1/chat/completions" in str(caught.value)


async def stream_text(proxy: Proxy) -> str:
    stream = await client(proxy).chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "x"}], stream=True
    )
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


@pytest.mark.parametrize("status", [401, 402, 503])
async def test_bootstrap_retries_rerun_a_stream_before_its_first_byte(
    status: int, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """`streaming.bootstrap-retries: 2` on top of `request-retry: 0`: three tries of the one credential."""
    fake, base = upstream
    extra = "disable-cooling: true\nstreaming:\n  bootstrap-retries: 2"
    proxy = await start_proxy(compat(base, keys=("sk-up-a",), extra=extra))
    fake.fail(status, times=2)
    assert await stream_text(proxy) == "Hello from fake"
    assert len(fake.seen) == 3
    fake.fail(status, times=3)
    with pytest.raises(openai.APIStatusError) as caught:
        await stream_text(proxy)
    assert caught.value.status_code == status
    assert len(fake.seen) == 6


async def test_bootstrap_retries_leave_non_stream_requests_and_faults_alone(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    extra = "disable-cooling: true\nstreaming:\n  bootstrap-retries: 2"
    proxy = await start_proxy(compat(base, keys=("sk-up-a",), extra=extra))
    fake.fail(503, times=1)
    with pytest.raises(openai.InternalServerError):
        await ask(proxy)
    assert len(fake.seen) == 1
    fake.fail(400, times=1)
    with pytest.raises(openai.BadRequestError):
        await stream_text(proxy)
    assert len(fake.seen) == 2


def scoped(base: str, rules: str) -> str:
    """Two credentials of one openai-compatibility provider that carries `request-scoped-errors`."""
    return compat(base, keys=("sk-up-a", "sk-up-b")).replace(
        "    models:\n", f"    request-scoped-errors:\n{rules}    models:\n", 1
    )


@pytest.mark.parametrize(
    ("status", "rule", "calls", "cooled"),
    [
        # a 400 is normally the client's fault; this one names the account, so the next key may serve
        (400, "match: [organization quota]\n      action: continue", 2, False),
        (400, "match-regexr: ['quota \\w+ hit']\n      action: continue-and-cooldown", 2, True),
        # a 503 normally fails over; these rules return it at once
        (503, "action: stop", 1, False),
        (503, "action: stop-and-cooldown", 1, True),
    ],
)
async def test_request_scoped_error_rules(
    status: int, rule: str, calls: int, cooled: bool, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(scoped(base, f"    - status: {status}\n      {rule}\n"))
    fake.fail(status, body=b'{"error":{"message":"organization quota quota 7 hit"}}')
    if calls == 2:
        assert await ask(proxy) == "Hello from fake"
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(proxy)
        assert caught.value.status_code == status
    assert len(fake.seen) == calls
    assert bool(proxy.health.snapshot()) is cooled


async def test_request_scoped_error_rule_that_does_not_match_changes_nothing(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(
        scoped(base, "    - status: 400\n      match: [organization quota]\n      action: continue\n")
    )
    fake.fail(400)  # "fake upstream error 400": still the client's own mistake
    with pytest.raises(openai.BadRequestError):
        await ask(proxy)
    assert len(fake.seen) == 1


async def test_request_scoped_error_rules_of_a_key_entry(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    entries = "\n".join(
        f"  - api-key: {key}\n    base-url: {base}\n    models: [{{name: claude-fake}}]\n"
        "    request-scoped-errors: [{status: 529, action: stop}]"
        for key in ("sk-a", "sk-b")
    )
    proxy = await start_proxy(f"claude-api-key:\n{entries}\n")
    fake.fail(529, dialect="claude")
    status, body = await ask_claude(proxy)
    assert status == 529 and body["type"] == "error"
    assert len(fake.seen) == 1 and not proxy.health.snapshot()
