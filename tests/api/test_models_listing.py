"""`GET /v1/models` in the shape each client expects, and `/v1beta/models`, read by the
official SDKs: OpenAI list by default, Anthropic shape for `anthropic-version` or a Claude Code
User-Agent, Gemini shape for `x-goog-api-key` (google-genai 3.x lists on `/v1/models`)."""

from __future__ import annotations

import re

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream


def config(base: str) -> str:
    return f"""
claude-api-key:
  - api-key: sk-c
    base-url: {base}
    models: [{{name: claude-fake-1, alias: claude-fake-1, display-name: Claude Fake}}]
gemini-api-key:
  - api-key: g1
    base-url: {base}
    models: [{{name: gemini-fake, max-context-length: 1000000}}]
openai-compatibility:
  - name: fakeco
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-o}}]
    models: [{{name: gpt-fake}}]
"""


IDS = {"claude-fake-1", "gemini-fake", "gpt-fake"}


async def get(proxy: Proxy, path: str, **headers: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(proxy.url + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_openai_shape(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    sdk = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    models = [m async for m in sdk.models.list()]
    assert {m.id for m in models} == IDS
    owners = {m.id: m.owned_by for m in models}
    assert owners == {"claude-fake-1": "anthropic", "gemini-fake": "google", "gpt-fake": "fakeco"}
    status, body = await get(proxy, "/v1/models", Authorization=f"Bearer {CLIENT_KEY}")
    assert status == 200 and body["object"] == "list"
    for item in body["data"]:  # type: ignore[attr-defined]
        assert set(item) <= {"id", "object", "created", "owned_by"} and item["object"] == "model"
    model = await sdk.models.retrieve("gpt-fake")
    assert model.id == "gpt-fake"
    with pytest.raises(openai.NotFoundError):
        await sdk.models.retrieve("nope")


async def test_anthropic_shape_for_sdk_and_claude_code(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    sdk = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    page = await sdk.models.list()
    ids = [m.id for m in page.data]
    assert "claude-fake-1" in ids
    cloaked = [i for i in ids if i != "claude-fake-1"]
    assert len(cloaked) == 2 and all(i.startswith("claude-fable-5-dd-") for i in cloaked)
    assert "claude-fable-5-dd-" + "gemini-fake"[::-1] in cloaked
    fake_model = next(m for m in page.data if m.id == "claude-fake-1")
    assert fake_model.display_name == "Claude Fake" and fake_model.type == "model"
    status, body = await get(
        proxy, "/v1/models?limit=1000", **{"x-api-key": CLIENT_KEY, "User-Agent": "claude-code/2.1.330"}
    )
    assert status == 200 and body["has_more"] is False
    data = body["data"]
    assert isinstance(data, list)
    assert body["first_id"] == data[0]["id"] and body["last_id"] == data[-1]["id"]
    assert [(m["display_name"], m["id"]) for m in data] == sorted((m["display_name"], m["id"]) for m in data)
    for item in data:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["created_at"])
        assert item["max_input_tokens"] > 0 and item["max_tokens"] > 0
    # a cloaked id from the listing is usable: decoded back before routing
    gpt_cloaked = "claude-fable-5-dd-" + "gpt-fake"[::-1]
    message = await sdk.messages.create(model=gpt_cloaked, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "Hello from fake"  # type: ignore[union-attr]
    assert fake.seen[-1].json["model"] == "gpt-fake"


@pytest.mark.parametrize("api_version", ["v1beta", None])
async def test_gemini_shape(api_version: str | None, upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    options = types.HttpOptions(base_url=proxy.url, api_version=api_version) if api_version else None
    sdk = genai.Client(api_key=CLIENT_KEY, http_options=options or types.HttpOptions(base_url=proxy.url))
    names = [m.name async for m in await sdk.aio.models.list()]
    assert set(names) == {f"models/{i}" for i in IDS}
    model = await sdk.aio.models.get(model="gemini-fake")
    assert model.name == "models/gemini-fake" and model.input_token_limit == 1_000_000
    assert "generateContent" in (model.supported_actions or [])
    with pytest.raises(errors.ClientError) as caught:
        await sdk.aio.models.get(model="nope")
    assert caught.value.code == 404


async def test_v1beta_models_raw(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    status, body = await get(proxy, "/v1beta/models", **{"x-goog-api-key": CLIENT_KEY})
    assert status == 200
    item = next(m for m in body["models"] if m["name"] == "models/gpt-fake")  # type: ignore[attr-defined]
    assert item["displayName"] == "gpt-fake" and item["supportedGenerationMethods"]
    status, body = await get(proxy, "/v1beta/models/models/gpt-fake", **{"x-goog-api-key": CLIENT_KEY})
    assert status == 200 and body["name"] == "models/gpt-fake"
    status, _ = await get(proxy, "/v1beta/models", Authorization="Bearer wrong")
    assert status == 401


async def test_claude_code_model_list_cloaking_can_be_turned_off(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """`claude-code.disable-cloaking-model-list: true`: real ids, usable as listed."""
    fake, base = upstream
    proxy = await start_proxy(config(base) + "claude-code:\n  disable-cloaking-model-list: true\n")
    sdk = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    page = await sdk.models.list()
    assert {m.id for m in page.data} == IDS
    assert (await sdk.models.retrieve("gpt-fake")).id == "gpt-fake"
    message = await sdk.messages.create(model="gpt-fake", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "Hello from fake"  # type: ignore[union-attr]
    assert fake.seen[-1].json["model"] == "gpt-fake"
