"""Key objects at the front door: disabled and expired keys get 401 in every dialect, through each SDK."""

from __future__ import annotations

import hashlib

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.conftest import ProxyFactory

CONFIG = f"""
host: 127.0.0.1
api-keys:
  - sk-plain-key-0001
  - name: switched-off
    key: sk-disabled-0001
    disabled: true
  - name: old
    key: sk-expired-0001
    expires: 2020-01-31
  - name: later
    key-sha256: {hashlib.sha256(b"sk-hashed-0001").hexdigest()}
    expires: "2999-01-01T00:00:00Z"
    models: ["gpt-*"]
"""


async def test_openai_sdk_disabled_key(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="sk-disabled-0001", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == "API key disabled"


async def test_anthropic_sdk_expired_key(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = anthropic.AsyncAnthropic(base_url=str(server.make_url("")), api_key="sk-expired-0001", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client.messages.create(model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "API key expired"}}


async def test_genai_sdk_expired_key(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    client = genai.Client(
        api_key="sk-expired-0001",
        http_options=genai_types.HttpOptions(base_url=str(server.make_url("")), api_version="v1beta"),
    )
    with pytest.raises(genai_errors.ClientError) as info:
        await client.aio.models.generate_content(model="gemini-x", contents="hi")
    assert info.value.code == 401
    assert info.value.status == "UNAUTHENTICATED"
    assert info.value.message == "API key expired"


async def test_plain_and_hashed_keys_pass_the_front_door(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    async with aiohttp.ClientSession() as session:
        for key in ("sk-plain-key-0001", "sk-hashed-0001"):
            headers = {"Authorization": f"Bearer {key}"}
            async with session.get(server.make_url("/v1/cliproxy/whoami"), headers=headers) as r:
                assert r.status == 200, key
        async with session.get(server.make_url("/v1/cliproxy/whoami"), headers={"x-api-key": "sk-nope"}) as r:
            assert r.status == 401
            assert (await r.json())["error"]["message"] == "Invalid API key"


async def test_a_later_source_may_hold_a_usable_key(proxy: ProxyFactory) -> None:
    """A disabled key in Authorization does not block a good key in ?key= (the sources are alternatives)."""
    server = await proxy(CONFIG)
    async with aiohttp.ClientSession() as session:
        url = server.make_url("/v1/cliproxy/whoami?key=sk-plain-key-0001")
        async with session.get(url, headers={"Authorization": "Bearer sk-disabled-0001"}) as r:
            assert r.status == 200


async def test_whoami_describes_the_key(proxy: ProxyFactory) -> None:
    server = await proxy(CONFIG)
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/v1/cliproxy/whoami"), headers={"Authorization": "Bearer sk-hashed-0001"}) as r,
    ):
        data = await r.json()
    assert data["name"] == "later"
    assert data["expires"] == "2999-01-01T00:00:00Z"
    assert data["models"] == ["gpt-*"]
    assert data["disabled"] is False
    assert data["usage"]["tokens_today"] == 0
    assert "sk-hashed-0001" not in str(data)


async def test_bad_expiry_names_the_yaml_path(proxy: ProxyFactory) -> None:
    from cliproxy.config.load import ConfigError, parse_config_text

    with pytest.raises(ConfigError) as info:
        parse_config_text("api-keys:\n  - {name: a, key: k, expires: soon}\n")
    assert any(line.startswith("api-keys[0].expires: not a date or time") for line in info.value.errors)
    with pytest.raises(ConfigError) as info:
        parse_config_text("api-keys:\n  - {name: a, key: k1}\n  - {name: a, key: k2}\n")
    assert any("named 'a'" in line for line in info.value.errors)
