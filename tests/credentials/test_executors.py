"""Requests through claude / codex / vertex auth files reach the fake backends with the right auth."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import app_from_config, write_config
from tests.fakes.oauth import FakeOAuth, fake_id_token
from tests.fakes.upstreams import FakeUpstream

CLIENT_KEY = "sk-client-creds-test"
LATER = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")


def put(auths: Path, name: str, data: dict[str, Any]) -> None:
    path = auths / name
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)


class World:
    """The proxy, its auth-dir, the fake OAuth provider and the fake upstream backend."""

    def __init__(self, proxy: TestServer, upstream: FakeUpstream, oauth: FakeOAuth, auths: Path) -> None:
        self.proxy, self.upstream, self.oauth, self.auths = proxy, upstream, oauth, auths

    @property
    def base(self) -> str:
        return str(self.proxy.make_url("")).rstrip("/")


@pytest.fixture
async def world(
    tmp_path: Path,
    fake_oauth: FakeOAuth,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    upstream = FakeUpstream()
    app = upstream.app()
    # The regional Vertex path of service-account credentials.
    app.router.add_post("/v1/projects/{project}/locations/{loc}/publishers/google/models/{target:.+}", upstream.gemini)
    up = await aiohttp_server(app)
    up_base = str(up.make_url("")).rstrip("/")
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_CLAUDE_API_URL", up_base)
    monkeypatch.setenv("CLIPROXY_CODEX_API_URL", f"{up_base}/backend-api/codex/responses")
    monkeypatch.setenv("CLIPROXY_VERTEX_API_URL", up_base)

    auths = tmp_path / "auths"
    auths.mkdir()
    # Not cloaked: these tests are about tokens and the beta flags an SDK's request keeps
    # (tests/credentials/test_cloaking.py covers cloaking, the default for OAuth credentials).
    put(auths, "claude-a.json", {
        "type": "claude", "email": "a@x.com", "access_token": "at-claude-old", "expired": LATER,
        "refresh_token": fake_oauth.issue_refresh_token("claude"), "cloak_mode": "never",
    })  # fmt: skip
    id_token = fake_id_token(
        {
            "email": "b@x.com",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acct-77", "chatgpt_plan_type": "pro"},
        }
    )
    put(auths, "codex-b.json", {
        "type": "codex", "email": "b@x.com", "access_token": "at-codex-original", "id_token": id_token,
        "expired": LATER, "refresh_token": fake_oauth.issue_refresh_token("codex"),
    })  # fmt: skip
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake_oauth.vertex_keys["sa@proj.iam"] = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    put(auths, "vertex-proj.json", {
        "type": "vertex", "project_id": "proj", "location": "europe-west4", "prefix": "sa",
        "service_account": {"type": "service_account", "project_id": "proj", "client_email": "sa@proj.iam",
                            "private_key": pem, "token_uri": "https://oauth2.googleapis.com/token"},
    })  # fmt: skip
    config = write_config(tmp_path, f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\n")
    proxy = await aiohttp_server(app_from_config(config))
    return World(proxy, upstream, fake_oauth, auths)


def header(seen: Any, name: str) -> str:
    return seen.header(name) or ""


async def test_claude_oauth_request_carries_bearer_and_both_beta_flags(world: World) -> None:
    client = anthropic.AsyncAnthropic(base_url=world.base, api_key=CLIENT_KEY, max_retries=0)
    message = await client.messages.create(
        model="claude-sonnet-4-5-20250929",
        max_tokens=32,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert message.content
    (seen,) = world.upstream.seen
    assert seen.path == "/v1/messages" and seen.query.get("beta") == "true"
    assert header(seen, "Authorization") == "Bearer at-claude-old"
    assert header(seen, "x-api-key") == "" and CLIENT_KEY not in json.dumps(seen.headers)
    assert header(seen, "anthropic-beta").split(",") == ["prompt-caching-2024-07-31", "oauth-2025-04-20"]


async def test_codex_non_stream_client_is_served_from_an_upstream_stream(world: World) -> None:
    client = openai.AsyncOpenAI(base_url=f"{world.base}/v1", api_key=CLIENT_KEY, max_retries=0)
    response = await client.responses.create(model="gpt-5-codex", input="hi")
    assert response.output_text  # aggregated from the upstream's SSE events
    (seen,) = world.upstream.seen
    assert seen.path == "/backend-api/codex/responses" and seen.json["stream"] is True
    assert header(seen, "Authorization") == "Bearer at-codex-original"
    assert header(seen, "Chatgpt-Account-Id") == "acct-77" and header(seen, "Originator") == "codex_cli_rs"


async def test_vertex_service_account_request_uses_a_minted_token(world: World) -> None:
    url = f"{world.base}/v1beta/models/sa/gemini-2.5-pro:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(url, json=body, headers={"x-goog-api-key": CLIENT_KEY}) as resp:
                assert resp.status == 200, await resp.text()
    first, second = world.upstream.seen
    assert (
        first.path == "/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    assert header(first, "Authorization").startswith("Bearer ya29.fake-")
    assert header(second, "Authorization") == header(first, "Authorization")
    assert world.oauth.requests["google:jwt"] == 1  # cached until near expiry


async def test_a_401_refreshes_once_and_retries(world: World) -> None:
    world.upstream.fail(401, key="at-claude-old", dialect="claude")
    client = anthropic.AsyncAnthropic(base_url=world.base, api_key=CLIENT_KEY, max_retries=0)
    await client.messages.create(
        model="claude-sonnet-4-5-20250929", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    old, new = world.upstream.seen
    assert header(old, "Authorization") == "Bearer at-claude-old"
    assert header(new, "Authorization").startswith("Bearer at-claude-") and new.headers != old.headers
    assert world.oauth.requests["claude:refresh"] == 1
    saved = json.loads((world.auths / "claude-a.json").read_text())
    assert header(new, "Authorization") == f"Bearer {saved['access_token']}"


async def test_two_concurrent_401s_cause_exactly_one_refresh(world: World) -> None:
    world.upstream.fail(401, key="at-codex-original", dialect="chat", times=2)
    world.oauth.refresh_gate = asyncio.Event()
    client = openai.AsyncOpenAI(base_url=f"{world.base}/v1", api_key=CLIENT_KEY, max_retries=0)
    calls = [asyncio.create_task(client.responses.create(model="gpt-5-codex", input="hi")) for _ in range(2)]
    for _ in range(500):
        if len(world.upstream.calls("at-codex-original")) == 2 and world.oauth.requests["codex:refresh"] == 1:
            break
        await asyncio.sleep(0.01)
    world.oauth.refresh_gate.set()
    answers = await asyncio.gather(*calls)
    assert all(a.output_text for a in answers)
    assert world.oauth.requests["codex:refresh"] == 1
    retried = [s for s in world.upstream.seen if "at-codex-original" not in header(s, "Authorization")]
    assert len(retried) == 2 and len({header(s, "Authorization") for s in retried}) == 1


async def test_models_of_auth_files_are_listed(world: World) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{world.base}/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as resp,
    ):
        ids = {m["id"] for m in (await resp.json())["data"]}
    assert {"claude-sonnet-4-5-20250929", "gpt-5-codex", "sa/gemini-2.5-pro"} <= ids


async def test_codex_sdk_requests_are_fitted_to_the_chatgpt_backend(world: World) -> None:
    """SDK clients send what the ChatGPT backend refuses (string input, limits, sampling, store)."""
    client = openai.AsyncOpenAI(base_url=f"{world.base}/v1", api_key=CLIENT_KEY, max_retries=0)
    response = await client.responses.create(
        model="gpt-5-codex", input="hi", max_output_tokens=64, temperature=0.2, top_p=0.9, store=True, user="u1"
    )
    assert response.output_text
    (seen,) = world.upstream.seen
    body = seen.json
    assert body["stream"] is True and body["store"] is False and body["instructions"] == ""
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert not {"max_output_tokens", "temperature", "top_p", "user"} & set(body)
    assert "reasoning.encrypted_content" in body["include"]


async def test_codex_serves_a_non_stream_chat_completions_client(world: World) -> None:
    client = openai.AsyncOpenAI(base_url=f"{world.base}/v1", api_key=CLIENT_KEY, max_retries=0)
    completion = await client.chat.completions.create(
        model="gpt-5-codex",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=64,
        temperature=0.5,
    )
    assert completion.choices[0].message.content  # aggregated from SSE, then translated to chat
    (seen,) = world.upstream.seen
    assert seen.json["stream"] is True and header(seen, "Chatgpt-Account-Id") == "acct-77"
    assert "be brief" in json.dumps(seen.json)


async def test_codex_cli_body_that_already_fits_is_forwarded_byte_for_byte(world: World) -> None:
    sent = (
        b'{"model":"gpt-5-codex","instructions":"You are Codex.","input":[{"type":"message","role":"developer",'
        b'"content":[{"type":"input_text","text":"rules"}]},{"type":"message","role":"user","content":'
        b'[{"type":"input_text","text":"hi"}]}],"tools":[],"tool_choice":"auto","parallel_tool_calls":false,'
        b'"reasoning":{"effort":"medium","summary":"auto"},"store":false,"stream":true,'
        b'"include":["reasoning.encrypted_content"],"prompt_cache_key":"01a2016d-8cc6"}'
    )
    headers = {
        "Authorization": f"Bearer {CLIENT_KEY}",
        "Content-Type": "application/json",
        "originator": "codex_exec",
        "User-Agent": "codex_exec/0.169.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.169.0)",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{world.base}/v1/responses", data=sent, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert b"response.completed" in await resp.read()
    (seen,) = world.upstream.seen
    assert seen.body == sent
    assert header(seen, "Originator") == "codex_exec" and header(seen, "User-Agent").startswith("codex_exec/")
    assert header(seen, "Authorization") == "Bearer at-codex-original"


async def test_a_vertex_401_mints_a_new_token_once_and_retries(world: World) -> None:
    world.upstream.fail(401, key="ya29.fake-1", dialect="gemini")
    url = f"{world.base}/v1beta/models/sa/gemini-2.5-pro:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"x-goog-api-key": CLIENT_KEY}) as resp,
    ):
        assert resp.status == 200, await resp.text()
    old, new = world.upstream.seen
    assert header(old, "Authorization") == "Bearer ya29.fake-1"
    assert header(new, "Authorization").startswith("Bearer ya29.fake-") and new.headers != old.headers
    assert world.oauth.requests["google:jwt"] == 2
