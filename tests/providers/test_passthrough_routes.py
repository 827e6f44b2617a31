"""The passthrough routes through the running proxy, driven by the official SDKs where they have them.

`/v1/responses/compact` (openai `responses.compact`), `/v1/alpha/search`, `/v1/images/generations`
and `/v1/images/edits` (openai `images.generate` / `images.edit`), `/v1beta/interactions`
(google-genai `interactions.create`): each reaches a credential that serves it, untranslated,
with the model swapped, and an upstream that does not serve it answers 501.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from google import genai
from google.genai import types

from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.oauth import fake_id_token
from tests.fakes.passthrough_upstream import FakeRoutes
from tests.providers.world import LATER, proxy_with, put

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
async def routes(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeRoutes, str]:
    fake = FakeRoutes()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def sdk(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


async def post(proxy: Proxy, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(proxy.url + path, json=body, headers=AUTH) as resp:
        return resp.status, await resp.json(content_type=None)


def keys(base: str) -> str:
    return f"""
codex-api-key:
  - api-key: sk-codex-up
    base-url: {base}/v1
    alpha-search: true
    models: [{{name: gpt-up, alias: gpt-client}}]
xai-api-key:
  - api-key: xai-up
    base-url: {base}/v1
    models: [{{name: grok-up}}]
openai-compatibility:
  - name: images
    base-url: {base}/v1
    api-key-entries: [{{api-key: sk-img}}]
    models: [{{name: img-up, alias: img-client}}]
claude-api-key:
  - api-key: sk-ant-up
    base-url: {base}
    models: [{{name: claude-up}}]
interactions-api-key:
  - api-key: AIza-interactions
    base-url: {base}
"""


async def test_compact_with_the_sdk_reaches_the_key_that_serves_the_model(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = routes
    proxy = await proxy_with(start_proxy, tmp_path / "auths", keys(base))
    items: Any = [{"role": "user", "content": "a long conversation"}]
    compacted = await sdk(proxy).responses.compact(model="gpt-client", input=items)
    assert compacted.id == "cmp_fake1" and compacted.output[0].type == "compaction"
    seen = fake.seen[-1]
    assert seen.path == "/v1/responses/compact" and seen.header("Authorization") == "Bearer sk-codex-up"
    assert seen.json["model"] == "gpt-up" and seen.json["input"] == items
    # xAI's compact leaves out what is not a summary's business
    body = {"model": "grok-up", "input": [*items, {"type": "compaction_trigger"}], "tools": [], "temperature": 1}
    status, answer = await post(proxy, "/backend-api/codex/responses/compact", body)
    assert status == 200 and answer["id"] == "cmp_fake1"
    sent = fake.seen[-1].json
    assert sent == {"model": "grok-up", "input": items}


async def test_compact_refuses_streams_and_upstreams_without_it(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = routes
    proxy = await proxy_with(start_proxy, tmp_path / "auths", keys(base))
    status, answer = await post(proxy, "/v1/responses/compact", {"model": "gpt-client", "input": [], "stream": True})
    assert status == 400 and answer["error"]["message"] == "Streaming not supported for compact responses"
    status, answer = await post(proxy, "/v1/responses/compact", {"model": "claude-up", "input": []})
    assert status == 501 and "/responses/compact not supported" in answer["error"]["message"]
    status, answer = await post(proxy, "/v1/responses/compact", {"model": "gpt-client", "input": [], "stream": False})
    assert status == 200 and "stream" not in fake.seen[-1].json
    assert [s.path for s in fake.seen] == ["/v1/responses/compact"]


async def test_alpha_search_with_a_key_that_has_it_and_a_codex_login(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = routes
    monkeypatch.setenv("CLIPROXY_CODEX_API_URL", f"{base}/backend-api/codex/responses")
    auths = tmp_path / "auths"
    id_token = fake_id_token({"email": "c@x.com", "https://api.openai.com/auth": {"chatgpt_account_id": "acct-9"}})
    put(auths, "codex-c.json", {"type": "codex", "access_token": "at-codex", "id_token": id_token, "expired": LATER,
                                "prefix": "login"})  # fmt: skip
    proxy = await proxy_with(start_proxy, auths, keys(base))
    body = {
        "model": "gpt-client",
        "id": "sess-1",
        "query": "q",
        "prompt_cache_key": "k",
        "prompt_cache_retention": "24h",
    }
    status, answer = await post(proxy, "/v1/alpha/search", body)
    assert status == 200 and answer["results"] == [{"title": "found it"}]
    seen = fake.seen[-1]
    assert seen.path == "/v1/alpha/search" and seen.json == {"model": "gpt-up", "id": "sess-1", "query": "q"}
    status, answer = await post(proxy, "/backend-api/codex/alpha/search", {"model": "login/gpt-5-codex", "query": "q"})
    assert status == 200
    seen = fake.seen[-1]
    assert seen.path == "/backend-api/codex/alpha/search" and seen.header("Chatgpt-Account-Id") == "acct-9"
    assert seen.header("Authorization") == "Bearer at-codex"
    status, answer = await post(proxy, "/v1/alpha/search", {"model": "grok-up", "query": "q"})
    assert status == 501 and isinstance(answer["error"], str)  # its own errors are plain text, as CLIProxyAPI's
    fake.refuse_status = 429
    status, answer = await post(proxy, "/v1/alpha/search", {"model": "gpt-client", "query": "q"})
    assert status == 429 and answer["error"]["message"] == "fake refusal"  # the upstream's own error, as it came


async def test_images_generate_and_edit_with_the_sdk(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = routes
    proxy = await proxy_with(start_proxy, tmp_path / "auths", keys(base))
    client = sdk(proxy)
    made = await client.images.generate(model="img-client", prompt="a red square", size="1024x1024")
    assert made.data and made.data[0].b64_json == "aW1hZ2U="
    seen = fake.seen[-1]
    assert seen.path == "/v1/images/generations" and seen.header("Authorization") == "Bearer sk-img"
    assert seen.json == {"model": "img-up", "prompt": "a red square", "size": "1024x1024"}
    png = b"\x89PNG\r\n\x1a\nfake-image-bytes"
    edited = await client.images.edit(model="img-client", image=("in.png", png, "image/png"), prompt="make it blue")
    assert edited.data and edited.data[0].b64_json == "aW1hZ2U="
    form = fake.forms[-1]
    assert form.fields["model"] == "img-up" and form.fields["prompt"] == "make it blue"
    assert list(form.files.values()) == [png]
    assert (
        fake.seen[-1]
        .header(
            "Content-Type",
        )
        .startswith("multipart/form-data; boundary=")
    )  # type: ignore[union-attr]
    status, _ = await post(proxy, "/v1/images/generations", {"model": "claude-up", "prompt": "x"})
    assert status == 501


def interactions_client(proxy: Proxy) -> genai.Client:
    return genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))


async def test_interactions_with_the_genai_sdk_whole_and_streamed(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = routes
    proxy = await proxy_with(start_proxy, tmp_path / "auths", keys(base))
    client = interactions_client(proxy)
    interaction = await client.aio.interactions.create(model="gemini-2.5-flash", input="hi")
    assert interaction.id == "v1_interaction_1" and interaction.status == "completed"
    seen = fake.seen[-1]
    assert seen.path == "/v1beta/interactions" and seen.header("x-goog-api-key") == "AIza-interactions"
    assert seen.header("Api-Revision") and seen.json["model"] == "gemini-2.5-flash" and seen.json["input"] == "hi"
    assert CLIENT_KEY not in json.dumps(seen.headers)
    stream = await client.aio.interactions.create(model="gemini-2.5-flash", input="hi", stream=True)
    kinds = [event.event_type async for event in stream]  # type: ignore[union-attr]
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    assert fake.seen[-1].json["stream"] is True


async def test_interactions_rules_and_agents(
    routes: tuple[FakeRoutes, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = routes
    proxy = await proxy_with(start_proxy, tmp_path / "auths", keys(base))
    status, answer = await post(
        proxy, "/v1beta/interactions", {"model": "gemini-2.5-flash", "agent": "x", "input": "h"}
    )
    assert status == 400 and "exactly one of model or agent" in answer["error"]["message"]
    status, _ = await post(proxy, "/v1beta/interactions", {"model": "gemini-2.5-flash", "input": "h", "stream": "yes"})
    assert status == 400
    status, answer = await post(proxy, "/v1beta/interactions", {"agent": "deep-research-pro", "input": "h"})
    assert status == 200 and fake.seen[-1].json == {"agent": "deep-research-pro", "input": "h"}
    status, _ = await post(proxy, "/v1beta/interactions", {"model": "models/gemini-2.5-pro", "input": "h"})
    assert status == 200 and fake.seen[-1].json["model"] == "gemini-2.5-pro"
    # interactions credentials serve only their own route: generateContent does not reach them
    status, _ = await post(proxy, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": []})
    assert status == 400 and fake.seen[-1].path == "/v1beta/interactions"
