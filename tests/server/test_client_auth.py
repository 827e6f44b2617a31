"""Client keys on every dialect route: each official SDK raises its own authentication error."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.conftest import ProxyFactory

CONFIG = """
host: 127.0.0.1
api-keys:
  - sk-client-good
"""


async def test_openai_sdk_raises_authentication_error(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    body = info.value.body
    assert isinstance(body, dict)
    assert body["message"] == "Invalid API key"
    assert body["type"] == "authentication_error"
    assert body["code"] == "invalid_api_key"


async def test_missing_key_says_missing(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = server.make_url("/v1/chat/completions")
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(client, json={}) as resp:
        assert resp.status == 401
        data = await resp.json()
    assert data["error"]["message"] == "Missing API key"


async def test_anthropic_sdk_raises_authentication_error(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")), api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client.messages.create(model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "Invalid API key"}}


@pytest.mark.parametrize("api_version", ["v1beta", "v1"])
async def test_genai_sdk_raises_client_error_401(proxy: ProxyFactory, api_version: str) -> None:
    server = await proxy(CONFIG)
    client = genai.Client(
        api_key="wrong",
        http_options=genai_types.HttpOptions(base_url=str(server.make_url("")), api_version=api_version),
    )
    with pytest.raises(genai_errors.ClientError) as info:
        await client.aio.models.generate_content(model="gemini-x", contents="hi")
    assert info.value.code == 401
    assert info.value.status == "UNAUTHENTICATED"
    assert info.value.message == "Invalid API key"


async def test_key_sources_in_precedence_order(proxy: ProxyFactory) -> None:
    """A wrong Authorization does not block a correct ?key=."""
    import aiohttp

    server = await proxy(CONFIG)
    async with aiohttp.ClientSession() as session:
        for headers, query in [
            ({"Authorization": "Bearer sk-client-good"}, ""),
            ({"Authorization": "sk-client-good"}, ""),
            ({"x-api-key": "sk-client-good"}, ""),
            ({"x-goog-api-key": "sk-client-good"}, ""),
            ({"Authorization": "Bearer wrong"}, "?key=sk-client-good"),
            ({}, "?auth_token=sk-client-good"),
        ]:
            async with session.post(server.make_url("/v1/chat/completions" + query), headers=headers, json={}) as r:
                assert r.status != 401, (headers, query)


async def test_open_when_no_keys(proxy: ProxyFactory) -> None:
    import aiohttp

    server = await proxy("host: 127.0.0.1\n")
    async with aiohttp.ClientSession() as session, session.post(server.make_url("/v1/chat/completions"), json={}) as r:
        assert r.status != 401


async def test_safe_mode_blocks_api_but_not_health(proxy: ProxyFactory) -> None:
    import aiohttp

    server = await proxy("api-keys: [your-api-key-1]\n")
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/v1/chat/completions"), json={}) as r:
            assert r.status == 403
            assert r.headers["X-CPA-SAFE-MODE"] == "example-api-key"
            assert "api-keys" in (await r.json())["message"]
        async with session.get(server.make_url("/healthz")) as r:
            assert r.status == 200
        async with session.get(server.make_url("/")) as r:  # a warning page that says how to fix it
            assert r.status == 200 and r.content_type == "text/html"
            assert "your-api-key-1" in await r.text() and "/v0/management/api-keys" in await r.text()


async def test_options_is_204_with_cors_before_auth(proxy: ProxyFactory) -> None:
    import aiohttp

    server = await proxy(CONFIG)
    async with aiohttp.ClientSession() as session:
        async with session.options(server.make_url("/v1/chat/completions")) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        async with session.post(server.make_url("/v1/chat/completions"), json={}) as r:
            assert r.status == 401
            assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_safe_mode_keeps_management_reachable_and_clears_when_keys_are_fixed(proxy: ProxyFactory) -> None:
    """Template keys: every API prefix is 403 with a how-to-fix body (the SDK raises its permission
    error), management still answers, and replacing the keys through it reopens the API at once."""
    import aiohttp

    from tests.management.client import MANAGEMENT_BLOCK, Mgmt

    template_keys = "api-keys: [your-api-key-1, your-api-key-2, your-api-key-3]\n"
    server = await proxy("host: 127.0.0.1\n" + template_keys + MANAGEMENT_BLOCK)
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/chat/completions", "/v1beta/models", "/openai/v1/models", "/backend-api/codex/responses"):
            headers = {"Authorization": "Bearer your-api-key-1"}
            async with session.post(server.make_url(path), headers=headers, json={}) as r:
                assert r.status == 403, path
                assert r.headers["X-CPA-SAFE-MODE"] == "example-api-key"
                body = await r.json()
        assert body["error"] == "unsafe_example_api_key"
        assert "your-api-key-1..3" in body["message"] and "/v0/management/api-keys" in body["message"]
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="your-api-key-1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        await client.models.list()

    mgmt = Mgmt(server)
    assert (await mgmt.get("/config")).status == 200
    assert (await mgmt.put("/api-keys", json=["sk-real-client-key-7777"])).status == 200
    fixed = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-real-client-key-7777", max_retries=0)
    assert (await fixed.models.list()).data is not None
    with pytest.raises(openai.AuthenticationError):
        await client.models.list()


@pytest.mark.parametrize("key", ["sk-wrong", ""])
async def test_every_sdk_call_raises_its_own_authentication_error(proxy: ProxyFactory, key: str) -> None:
    """Beyond the one call per SDK above: each SDK method a client uses, with a wrong and no key."""
    server = await proxy(CONFIG)
    base = str(server.make_url(""))
    message = "Invalid API key" if key else "Missing API key"
    # An empty Authorization header is skipped like an absent one.
    oai = openai.AsyncOpenAI(base_url=base + "/v1", api_key=key or "unused", max_retries=0)
    if not key:
        oai = oai.with_options(default_headers={"Authorization": ""})
    for call in (
        lambda: oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]),
        lambda: oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True),
        lambda: oai.responses.create(model="m", input="x"),
        lambda: oai.models.list(),
        lambda: oai.completions.create(model="m", prompt="x"),
    ):
        with pytest.raises(openai.AuthenticationError) as info:
            await call()
        assert isinstance(info.value.body, dict) and info.value.body["message"] == message

    if key:
        ant = anthropic.AsyncAnthropic(base_url=base, api_key=key, max_retries=0)
    else:  # no key header at all
        omit: dict[str, str] = {"Authorization": anthropic.Omit()}  # type: ignore[dict-item]
        ant = anthropic.AsyncAnthropic(base_url=base, api_key=None, max_retries=0, default_headers=omit)
    for acall in (
        lambda: ant.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}]),
        lambda: ant.messages.count_tokens(model="m", messages=[{"role": "user", "content": "x"}]),
        lambda: ant.models.list(),
    ):
        with pytest.raises(anthropic.AuthenticationError) as ainfo:
            await acall()
        assert ainfo.value.body == {"type": "error", "error": {"type": "authentication_error", "message": message}}

    if not key:
        return  # the genai SDK refuses to start without a key
    gem = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=base, api_version="v1beta")).aio
    for gcall in (
        lambda: gem.models.generate_content(model="m", contents="x"),
        lambda: gem.models.count_tokens(model="m", contents="x"),
        lambda: gem.models.get(model="m"),
    ):
        with pytest.raises(genai_errors.ClientError) as ginfo:
            await gcall()
        assert (ginfo.value.code, ginfo.value.status, ginfo.value.message) == (401, "UNAUTHENTICATED", message)
