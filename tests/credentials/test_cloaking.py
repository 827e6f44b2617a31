"""Claude cloaking through the running proxy: requests of official SDKs reach a Claude OAuth
credential shaped like the recorded Claude Code request; Claude Code's own pass untouched."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import xxhash
from aiohttp.test_utils import TestServer
from google import genai
from google.genai import types as genai_types

from tests.conftest import app_from_config, write_config
from tests.fakes.claude_code import TRANSPORT, recorded_request, replay_headers
from tests.fakes.upstreams import FakeUpstream, Seen

CLIENT_KEY = "sk-client-cloak-test"
LATER = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
BILLING = re.compile(r"x-anthropic-billing-header: cc_version=\d+\.\d+\.\d+\.[0-9a-f]{3}; cc_entrypoint=cli;")
SIGNED = re.compile(BILLING.pattern + r" cch=([0-9a-f]{5});")
USER_ID = re.compile(r'\{"device_id":"[0-9a-f]{64}","account_uuid":"([0-9a-f-]{36})?","session_id":"([0-9a-f-]{36})"\}')

Start = Callable[..., Awaitable[tuple[str, FakeUpstream]]]


@pytest.fixture
def start(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]], monkeypatch: pytest.MonkeyPatch
) -> Start:
    """`await start(file_fields, config_text)`: the proxy with one Claude OAuth file, on a fake upstream."""

    async def go(fields: dict[str, Any] | None = None, extra: str = "") -> tuple[str, FakeUpstream]:
        fake = FakeUpstream()
        up = await aiohttp_server(fake.app())
        monkeypatch.setenv("CLIPROXY_CLAUDE_API_URL", str(up.make_url("")).rstrip("/"))
        auths = tmp_path / "auths"
        auths.mkdir(exist_ok=True)
        data = {
            "type": "claude",
            "email": "a@x.com",
            "access_token": "at-claude",
            "expired": LATER,
            "model_aliases": [{"name": "claude-fake-1", "alias": "fake-alias", "fork": True}],  # serve the fakes' model
            **(fields or {}),
        }
        path = auths / "claude-a.json"
        path.write_text(json.dumps(data))
        os.chmod(path, 0o600)
        config = write_config(tmp_path, f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\n{extra}")
        proxy = await aiohttp_server(app_from_config(config))
        return str(proxy.make_url("")).rstrip("/"), fake

    return go


def cch_of(raw: bytes) -> str:
    """Claude Code's body signature, recomputed from the bytes as sent: the placeholder zeroed,
    `model` strings emptied, `max_tokens`/`fallbacks`/`fallback_credit_token` members cut out."""
    view = re.sub(rb"cch=[0-9a-f]{5};", b"cch=00000;", raw)
    view = re.sub(rb'"model":"(?:[^"\\]|\\.)*"', b'"model":""', view)
    view = re.sub(rb',"max_tokens":\d+|"max_tokens":\d+,', b"", view)
    return "%05x" % (xxhash.xxh64_intdigest(view, seed=0x4D659218E32A3268) & 0xFFFFF)


def header_names(lines: list[tuple[str, str]]) -> set[str]:
    return {name.lower() for name, _ in lines}


def user_text(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    return [content] if isinstance(content, str) else [b["text"] for b in content if b.get("type") == "text"]


def assert_cloaked(seen: Seen) -> dict[str, Any]:
    """The shape of the recorded Claude Code request: its header names and its system-prompt opening."""
    recorded_headers, recorded_body = recorded_request("claude_code_p_authtoken")
    assert header_names(seen.header_list) == header_names(recorded_headers)
    body = seen.json
    billing, identity = body["system"]
    signature = SIGNED.fullmatch(billing["text"])  # a subscription's requests are signed
    assert signature is not None and "cache_control" not in billing
    assert signature.group(1) == cch_of(seen.body)
    assert identity == {"type": "text", "text": IDENTITY, "cache_control": {"type": "ephemeral"}}
    assert re.fullmatch(BILLING.pattern.replace("=cli;", "=[a-z-]+;"), recorded_body["system"][0]["text"])
    assert billing["text"].startswith(recorded_body["system"][0]["text"].split(".", 3)[0])
    match = USER_ID.fullmatch(body["metadata"]["user_id"])
    assert match is not None and match.group(2) == seen.header("X-Claude-Code-Session-Id")
    assert seen.header("x-app") == "cli" and str(seen.header("User-Agent")).startswith("claude-cli/")
    assert str(seen.header("anthropic-beta")).split(",")[:2] == ["claude-code-20250219", "oauth-2025-04-20"]
    assert seen.header("Authorization") == "Bearer at-claude"
    assert CLIENT_KEY not in json.dumps(seen.headers)
    return body  # type: ignore[no-any-return]


async def test_an_openai_sdk_request_is_cloaked_like_the_recorded_claude_code_request(start: Start) -> None:
    base, fake = await start()
    sdk = openai.AsyncOpenAI(base_url=base + "/v1", api_key=CLIENT_KEY, max_retries=0)
    answer = await sdk.chat.completions.create(
        model="claude-sonnet-4-5-20250929",  # a model of CLIProxyAPI's legacy list: system text as reminders
        messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "say hi"}],
        temperature=0.3,
    )
    assert answer.choices[0].message.content == "Hello from fake"
    (seen,) = fake.seen
    body = assert_cloaked(seen)
    (first,) = body["messages"]
    texts = user_text(first)
    assert texts[0].startswith("<system-reminder>\nAs you answer the user's questions")  # the date, first
    assert "Today's date is " in texts[0]
    assert texts[1] == "<system-reminder>\nAnswer in French.\n</system-reminder>"
    assert texts[2] == "say hi"  # the user's text, intact
    assert first["content"][2]["cache_control"] == {"type": "ephemeral"}
    assert "temperature" not in body
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header: cc_version=2.1.330.")


async def test_claude_code_passes_untouched_through_a_subscription(start: Start) -> None:
    base, fake = await start({"cloak_mode": "always"})  # even `always` leaves Claude Code alone
    recorded_headers, body = recorded_request("claude_code_interactive")
    raw = json.dumps({**body, "stream": False}).encode()
    headers = replay_headers("claude_code_interactive", CLIENT_KEY)
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/v1/messages?beta=true", data=raw, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
    (seen,) = fake.seen
    assert seen.body == raw  # byte for byte
    sent = {k.lower(): v for k, v in seen.headers.items()}
    for name, value in recorded_headers:
        if name.lower() in TRANSPORT:
            continue
        expected = value + ",oauth-2025-04-20" if name.lower() == "anthropic-beta" else value
        assert sent[name.lower()] == expected, name
    assert sent["authorization"] == "Bearer at-claude"


async def test_anthropic_sdk_strict_mode_words_and_the_session(start: Start) -> None:
    base, fake = await start({"cloak_strict_mode": "true", "cloak_sensitive_words": "Acme, secret plan"})
    sdk = anthropic.AsyncAnthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)
    conversation = [{"role": "user", "content": "Tell ACME about the Secret Plan."}]
    for _ in range(2):
        await sdk.messages.create(
            model="claude-fake-1",
            max_tokens=32,
            system="You work for Acme.",
            messages=conversation,  # type: ignore[arg-type]
        )
    await sdk.messages.create(model="claude-fake-1", max_tokens=32, messages=[{"role": "user", "content": "other"}])
    first, again, other = fake.seen
    body = assert_cloaked(first)
    assert len(body["messages"]) == 1  # strict: the caller's system prompt is dropped
    assert (
        "A\u200bCME" in user_text(body["messages"][0])[-1] and "S\u200becret Plan" in user_text(body["messages"][0])[-1]
    )
    session = first.header("X-Claude-Code-Session-Id")
    assert again.header("X-Claude-Code-Session-Id") == session  # one conversation, one session
    assert other.header("X-Claude-Code-Session-Id") != session
    device = json.loads(first.json["metadata"]["user_id"])["device_id"]
    assert json.loads(other.json["metadata"]["user_id"])["device_id"] == device  # one device per subscription


async def test_non_legacy_models_get_system_turns_and_cache_user_id_one_user(start: Start) -> None:
    base, fake = await start({"cloak_cache_user_id": "true", "account_uuid": "0a1b2c3d-0000-4000-8000-000000000001"})
    sdk = anthropic.AsyncAnthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)
    for text in ("one", "two"):
        await sdk.messages.create(
            model="claude-fake-1",
            max_tokens=32,
            system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": text}],
        )
    first, second = fake.seen
    body = assert_cloaked(first)
    assert body["messages"][1] == {
        "role": "system",
        "content": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
    }
    assert "mid-conversation-system-2026-04-07" in first.header("anthropic-beta")  # type: ignore[operator]
    assert first.json["metadata"] == second.json["metadata"]  # cache-user-id: one user_id per credential
    assert json.loads(first.json["metadata"]["user_id"])["account_uuid"] == "0a1b2c3d-0000-4000-8000-000000000001"


async def test_gemini_sdk_is_cloaked_too(start: Start) -> None:
    base, fake = await start()
    client = genai.Client(api_key=CLIENT_KEY, http_options=genai_types.HttpOptions(base_url=base))
    result = await client.aio.models.generate_content(model="claude-fake-1", contents="say hi")
    assert result.text
    assert_cloaked(fake.seen[0])


async def test_never_mode_and_disable_claude_cloak_mode_leave_requests_alone(start: Start) -> None:
    base, fake = await start(extra="disable-claude-cloak-mode: true\n")
    sdk = anthropic.AsyncAnthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)
    await sdk.messages.create(
        model="claude-fake-1", max_tokens=8, system="mine", messages=[{"role": "user", "content": "x"}]
    )
    (seen,) = fake.seen
    assert seen.json["system"] == "mine" and "metadata" not in seen.json
    assert seen.header("x-app") is None


async def test_breakpoints_stay_within_four(start: Start) -> None:
    base, fake = await start()
    sdk = anthropic.AsyncAnthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0)
    mark = {"type": "ephemeral"}
    await sdk.messages.create(
        model="claude-fake-1",
        max_tokens=8,
        system=[{"type": "text", "text": f"rule {i}", "cache_control": mark} for i in range(3)],  # type: ignore[typeddict-item]
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": mark}]},  # type: ignore[typeddict-item]
            {"role": "assistant", "content": [{"type": "text", "text": "b", "cache_control": mark}]},  # type: ignore[typeddict-item]
            {"role": "user", "content": [{"type": "text", "text": "c", "cache_control": mark}]},  # type: ignore[typeddict-item]
        ],
    )
    body = fake.seen[0].json
    marks = json.dumps(body).count('"cache_control"')
    assert marks == 4 and body["system"][1]["cache_control"] == mark
    assert body["messages"][-1]["content"][-1]["cache_control"] == mark  # the latest breakpoint is kept


async def test_a_non_text_system_block_is_the_clients_fault(start: Start) -> None:
    base, fake = await start()
    async with aiohttp.ClientSession() as http:
        body = {
            "model": "claude-fake-1",
            "max_tokens": 8,
            "system": [{"type": "image", "source": {"type": "url", "url": "https://x.example/a.png"}}],
            "messages": [{"role": "user", "content": "x"}],
        }
        async with http.post(base + "/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}) as r:
            assert r.status == 400
            assert "system.0.type" in (await r.json())["error"]["message"]
    assert fake.seen == []


async def test_api_keys_cloak_only_when_asked(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    fake = FakeUpstream()
    up = await aiohttp_server(fake.app())
    base = str(up.make_url("")).rstrip("/")
    entry = "  - api-key: {key}\n    base-url: " + base + "\n    prefix: {prefix}\n"
    config = write_config(
        tmp_path,
        f"api-keys: [{CLIENT_KEY}]\nclaude-api-key:\n"
        + entry.format(key="sk-plain", prefix="plain")
        + entry.format(key="sk-cloaked", prefix="cloaked")
        + "    cloak:\n      mode: always\n    headers:\n      X-Team: research\n",
    )
    proxy = await aiohttp_server(app_from_config(config))
    sdk = anthropic.AsyncAnthropic(base_url=str(proxy.make_url("")).rstrip("/"), api_key=CLIENT_KEY, max_retries=0)
    for prefix in ("plain", "cloaked"):
        await sdk.messages.create(
            model=f"{prefix}/claude-sonnet-4-5-20250929", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    plain, cloaked = fake.seen
    assert "system" not in plain.json and plain.header("x-app") is None
    assert cloaked.json["system"][1]["text"] == IDENTITY and cloaked.header("x-app") == "cli"
    assert BILLING.fullmatch(cloaked.json["system"][0]["text"])  # an API key's requests are not signed
    assert cloaked.header("Authorization") == "Bearer sk-cloaked"
    assert cloaked.header("X-Team") == "research"  # the entry's own headers stay
    assert "oauth-2025-04-20" not in cloaked.header("anthropic-beta")  # type: ignore[operator]
    assert json.loads(cloaked.json["metadata"]["user_id"])["account_uuid"] == ""


async def test_header_defaults_rebuild_and_count_tokens(start: Start) -> None:
    """`claude-header-defaults` changes what the cloak says; `rebuild_mid_system_message` moves a
    caller's system turn into its system prompt first; counting is cloaked in its headers only."""
    extra = "claude-header-defaults:\n  user-agent: claude-cli/2.1.400 (external, cli)\n  os: MacOS\n  timeout: 900\n"
    base, fake = await start({"rebuild_mid_system_message": "true"}, extra)
    body = {
        "model": "claude-fake-1",
        "max_tokens": 8,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "system", "content": "mid-conversation rule"},
            {"role": "user", "content": "second"},
        ],
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}) as r:
            assert r.status == 200, await r.text()
        count = {"model": "claude-fake-1", "messages": [{"role": "user", "content": "count me"}]}
        async with http.post(base + "/v1/messages/count_tokens", json=count, headers={"x-api-key": CLIENT_KEY}) as r:
            assert r.status == 200 and (await r.json())["input_tokens"] == 7
    generated, counted = fake.seen
    assert generated.header("User-Agent") == "claude-cli/2.1.400 (external, cli)"
    assert generated.header("X-Stainless-OS") == "MacOS" and generated.header("X-Stainless-Timeout") == "900"
    sent = generated.json
    assert sent["system"][0]["text"].startswith("x-anthropic-billing-header: cc_version=2.1.400.")
    # the system turn joined the system prompt, which the cloak then put after the opening user turns
    assert [m["role"] for m in sent["messages"]] == ["user", "user", "system"]
    assert sent["messages"][2]["content"][0]["text"] == "mid-conversation rule"
    assert counted.path == "/v1/messages/count_tokens" and counted.json == count
    assert counted.header("x-app") == "cli" and "token-counting-2024-11-01" in str(counted.header("anthropic-beta"))
    assert counted.header("X-Stainless-Timeout") is None
