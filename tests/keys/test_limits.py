"""Per-key limits through the official SDKs: each refusal in the route's own dialect, so the
openai, anthropic and google-genai SDKs raise their own exception classes.

model scope → 403 naming the model; daily tokens or budget used up → 403; an unknown price on a
budgeted key → 403 unless `allow-unknown-price`; per-minute rate → 429 with Retry-After;
concurrency cap → 429. One fake OpenAI-compatible upstream serves every model (5 + 3 tokens per
answer); the Anthropic and Gemini routes reach it through translation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

SDKS = ("openai", "anthropic", "genai")


def config(base: str, keys: str, extra: str = "") -> str:
    return f"""
host: 127.0.0.1
{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-upstream-0001
    models:
      - name: gpt-4o
      - name: gpt-4o-mini
      - name: house-model-without-price
api-keys:
{keys}
"""


async def ask(proxy: Proxy, sdk: str, key: str, model: str) -> str:
    """One minimal generation request through `sdk`; returns the answer's text."""
    if sdk == "openai":
        oa = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
        answer = await oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        return answer.choices[0].message.content or ""
    if sdk == "anthropic":
        an = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=key, max_retries=0)
        message = await an.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        return "".join(block.text for block in message.content if block.type == "text")
    client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    reply = await client.aio.models.generate_content(model=model, contents="hi")
    return reply.text or ""


def expected_error(sdk: str, status: int) -> type[Exception]:
    """The exception class each SDK raises for `status`."""
    if sdk == "openai":
        return {401: openai.AuthenticationError, 403: openai.PermissionDeniedError, 429: openai.RateLimitError}[status]
    if sdk == "anthropic":
        return {
            401: anthropic.AuthenticationError,
            403: anthropic.PermissionDeniedError,
            429: anthropic.RateLimitError,
        }[status]
    return genai_errors.ClientError


def error_facts(sdk: str, exc: Exception) -> tuple[int, str, dict[str, str]]:
    """(HTTP status, message, response headers) of an SDK exception."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return exc.status_code, str(body.get("message")), dict(exc.response.headers)
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", {})
        assert body.get("type") == "error"
        return exc.status_code, str(error.get("message")), dict(exc.response.headers)
    assert isinstance(exc, genai_errors.APIError)
    headers = getattr(exc.response, "headers", {}) or {}
    return exc.code, str(exc.message), {k.lower(): v for k, v in dict(headers).items()}


async def refused(proxy: Proxy, sdk: str, key: str, model: str, status: int) -> tuple[str, dict[str, str]]:
    """Assert the request is refused with `status` by the SDK's own exception; (message, headers)."""
    with pytest.raises(expected_error(sdk, status)) as info:
        await ask(proxy, sdk, key, model)
    code, message, headers = error_facts(sdk, info.value)
    assert code == status, (sdk, code, message)
    if sdk == "genai":
        assert isinstance(info.value, genai_errors.APIError)
        assert info.value.status == {403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}[status]
    return message, {k.lower(): v for k, v in headers.items()}


async def until(check: Callable[[], Awaitable[bool]], tries: int = 200) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def whoami(proxy: Proxy, key: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.url + "/v1/cliproxy/whoami", headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


# -- model scope --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_model_outside_the_keys_scope_is_403_naming_it(
    sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base, '  - {name: scoped, key: sk-scoped-0001, models: ["gpt-4o-mini"]}'))
    assert await ask(proxy, sdk, "sk-scoped-0001", "gpt-4o-mini") == "Hello from fake"
    message, _ = await refused(proxy, sdk, "sk-scoped-0001", "gpt-4o", 403)
    assert "'gpt-4o'" in message and "scoped" in message
    assert len(fake.seen) == 1  # the refused request never reached the upstream


async def test_thinking_suffix_stays_inside_the_scope(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, '  - {name: scoped, key: sk-scoped-0001, models: ["gpt-4o-mini"]}'))
    assert await ask(proxy, "openai", "sk-scoped-0001", "gpt-4o-mini(high)") == "Hello from fake"
    message, _ = await refused(proxy, "openai", "sk-scoped-0001", "gpt-4o(high)", 403)
    assert "'gpt-4o'" in message


async def test_scoped_key_cannot_probe_for_unknown_models(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """A model outside the scope is 403 whether or not it exists: the key learns nothing more."""
    _, base = upstream
    proxy = await start_proxy(config(base, '  - {name: scoped, key: sk-scoped-0001, models: ["gpt-4o-mini"]}'))
    message, _ = await refused(proxy, "openai", "sk-scoped-0001", "no-such-model", 403)
    assert "'no-such-model'" in message


async def test_stream_request_outside_the_scope_is_refused_before_streaming(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, '  - {name: scoped, key: sk-scoped-0001, models: ["gpt-4o-mini"]}'))
    oa = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-scoped-0001", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "'gpt-4o'" in info.value.message


# -- allowances ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_daily_token_allowance_used_up_is_403(
    sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, "  - {name: small, key: sk-small-0001, max-tokens-per-day: 10}"))
    assert await ask(proxy, sdk, "sk-small-0001", "gpt-4o") == "Hello from fake"  # 8 tokens: 2 left
    assert await ask(proxy, sdk, "sk-small-0001", "gpt-4o") == "Hello from fake"  # 16: over
    message, headers = await refused(proxy, sdk, "sk-small-0001", "gpt-4o", 403)
    assert "daily token allowance" in message and "16 of 10 tokens" in message
    assert "retry-after" not in headers  # retrying does not help before the day ends


@pytest.mark.parametrize("sdk", SDKS)
async def test_budget_used_up_is_403(sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, "  - {name: thrifty, key: sk-thrifty-0001, max-budget-usd: 0.00001}"))
    await ask(proxy, sdk, "sk-thrifty-0001", "gpt-4o")  # gpt-4o's litellm price makes this > $0.00001
    message, _ = await refused(proxy, sdk, "sk-thrifty-0001", "gpt-4o", 403)
    assert "budget of API key 'thrifty' is used up" in message and "this month" in message
    spent = (await whoami(proxy, "sk-thrifty-0001"))["usage"]["cost_usd_this_period"]
    assert 0.00001 < spent < 0.001


async def test_cost_comes_from_litellms_bundled_prices(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """8 tokens of gpt-4o (5 in of which 2 cached, 3 out) cost exactly what litellm's table says."""
    from cliproxy.pricing import PriceTable

    _, base = upstream
    proxy = await start_proxy(config(base, "  - {name: metered, key: sk-metered-0001, max-budget-usd: 10}"))
    await ask(proxy, "openai", "sk-metered-0001", "gpt-4o")
    price = PriceTable.load().price("gpt-4o")
    assert price is not None and price.cache_read is not None
    expected = 3 * price.input + 2 * price.cache_read + 3 * price.output
    usage = (await whoami(proxy, "sk-metered-0001"))["usage"]
    assert usage["cost_usd_this_period"] == pytest.approx(expected, rel=1e-6)
    assert usage["unknown_price_requests_this_period"] == 0


@pytest.mark.parametrize("sdk", SDKS)
async def test_unknown_price_is_refused_on_a_budgeted_key(
    sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    keys = (
        "  - {name: strict, key: sk-strict-0001, max-budget-usd: 5}\n"
        "  - {name: lenient, key: sk-lenient-0001, max-budget-usd: 5, allow-unknown-price: true}"
    )
    proxy = await start_proxy(config(base, keys))
    message, _ = await refused(proxy, sdk, "sk-strict-0001", "house-model-without-price", 403)
    assert "price of model 'house-model-without-price' is unknown" in message
    assert "allow-unknown-price" in message
    assert await ask(proxy, sdk, "sk-lenient-0001", "house-model-without-price") == "Hello from fake"
    usage = (await whoami(proxy, "sk-lenient-0001"))["usage"]
    assert usage["unknown_price_requests_this_period"] == 1  # counted as unknown, never as $0 spent
    assert usage["cost_usd_this_period"] == 0


# -- rates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_per_minute_rate_is_429_with_retry_after(
    sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, "  - {name: slow, key: sk-slow-0001, max-requests-per-minute: 2}"))
    for _ in range(2):
        await ask(proxy, sdk, "sk-slow-0001", "gpt-4o")
    message, headers = await refused(proxy, sdk, "sk-slow-0001", "gpt-4o", 429)
    assert "limited to 2 requests per minute" in message
    assert 1 <= int(headers["retry-after"]) <= 60


@pytest.mark.parametrize("sdk", SDKS)
async def test_concurrency_cap_is_429_and_frees_when_a_request_ends(
    sdk: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base, "  - {name: single, key: sk-single-0001, max-concurrent: 1}"))
    fake.hold = True  # the first stream stays open after its first event
    oa = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-single-0001", max_retries=0)
    stream = await oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    await fake.first_sent.wait()
    message, headers = await refused(proxy, sdk, "sk-single-0001", "gpt-4o", 429)
    assert "limit 1" in message and headers["retry-after"] == "1"
    await stream.close()  # the client goes away: its slot is released
    await fake.closed.wait()

    async def free() -> bool:
        return (await whoami(proxy, "sk-single-0001"))["usage"]["in_flight"] == 0

    await until(free)
    fake.hold = False
    assert await ask(proxy, sdk, "sk-single-0001", "gpt-4o") == "Hello from fake"


async def test_plain_keys_and_unlimited_objects_are_not_limited(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    keys = "  - sk-plain-0001\n  - {name: free, key: sk-free-0001}"
    proxy = await start_proxy(config(base, keys))
    for key in ("sk-plain-0001", "sk-free-0001"):
        for model in ("gpt-4o", "house-model-without-price"):
            assert await ask(proxy, "openai", key, model) == "Hello from fake"


async def test_untranslatable_upstream_answer_is_502_and_frees_the_slot(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """An upstream answer the proxy cannot translate is a 502 in the client's dialect (a JSON array
    or a non-JSON body used to reach an Anthropic client untranslated, as a 200), and it frees the
    key's concurrency slot."""
    fake, base = upstream
    # Such an answer cools its credential down like any transient failure; off here, so that each of
    # the three bodies reaches the only credential.
    keys = "  - {name: single, key: sk-single-0001, max-concurrent: 1}"
    proxy = await start_proxy(config(base, keys, "transient-error-cooldown-seconds: -1"))
    for body in (b"[]", b'{"choices": 7}', b"not json"):
        fake.fail(200, body=body)
        with pytest.raises(anthropic.InternalServerError) as info:
            await ask(proxy, "anthropic", "sk-single-0001", "gpt-4o")
        assert info.value.status_code == 502 and "could not be translated" in info.value.message
        assert (await whoami(proxy, "sk-single-0001"))["usage"]["in_flight"] == 0, body
    assert await ask(proxy, "anthropic", "sk-single-0001", "gpt-4o") == "Hello from fake"
