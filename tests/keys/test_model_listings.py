"""Model listings are scoped to the key: `/v1/models` (OpenAI and Anthropic shapes) and
`/v1beta/models` (Gemini) list only the models the key may use, through each official SDK, and a
single-model lookup outside the scope answers like an unknown model."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from cliproxy.routing.catalog import uncloak
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

EVERY_MODEL = {"gpt-4o", "gpt-4o-mini", "house-model"}


def config(base: str) -> str:
    return f"""
host: 127.0.0.1
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: sk-upstream-0001
    models:
      - name: gpt-4o
      - name: gpt-4o-mini
      - name: house-model
api-keys:
  - sk-plain-0001
  - name: minis
    key: sk-minis-0001
    models: ["*-MINI", "house-*"]
"""


async def openai_ids(proxy: Proxy, key: str) -> set[str]:
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    return {m.id async for m in client.models.list()}


async def anthropic_ids(proxy: Proxy, key: str) -> set[str]:
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=key, max_retries=0)
    page = await client.models.list()
    return {uncloak(m.id) for m in page.data}


async def gemini_ids(proxy: Proxy, key: str) -> set[str]:
    client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    pager = await client.aio.models.list()
    return {str(m.name).removeprefix("models/") async for m in pager}


@pytest.mark.parametrize("lister", [openai_ids, anthropic_ids, gemini_ids], ids=["openai", "anthropic", "genai"])
async def test_listing_shows_only_the_keys_models(
    lister: object, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    assert callable(lister)
    assert await lister(proxy, "sk-plain-0001") == EVERY_MODEL
    assert await lister(proxy, "sk-minis-0001") == {"gpt-4o-mini", "house-model"}


async def test_single_model_outside_the_scope_is_not_found(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    oa = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-minis-0001", max_retries=0)
    assert (await oa.models.retrieve("gpt-4o-mini")).id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        await oa.models.retrieve("gpt-4o")
    assert (await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-plain-0001").models.retrieve("gpt-4o")).id
    client = genai.Client(
        api_key="sk-minis-0001", http_options=genai_types.HttpOptions(base_url=proxy.url, api_version="v1beta")
    )
    assert (await client.aio.models.get(model="house-model")).name == "models/house-model"
    with pytest.raises(genai_errors.ClientError) as info:
        await client.aio.models.get(model="gpt-4o")
    assert info.value.code == 404


async def test_whoami_allowed_models_match_the_listing(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    import aiohttp

    _, base = upstream
    proxy = await start_proxy(config(base))
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.url + "/v1/cliproxy/whoami", headers={"Authorization": "Bearer sk-minis-0001"}) as r,
    ):
        data = await r.json()
    assert set(data["allowed_models"]) == await openai_ids(proxy, "sk-minis-0001")
