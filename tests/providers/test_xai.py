"""xAI end to end: API keys and logins through the running proxy, from every client dialect.

The fake upstream speaks the Responses API (SSE) at `/v1/responses` (the API) and at
`/chatproxy/v1/responses` (the CLI chat proxy); the fake OAuth server runs xAI's OIDC discovery
and RFC 8628 device flow, with single-use refresh tokens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.credentials.login import device_login
from cliproxy.credentials.oauth import DeviceCode, OAuthError
from cliproxy.credentials.providers.xai import XaiSettings, poll_device_code
from cliproxy.credentials.registry import ProviderSettings
from cliproxy.routing.health import FREE_USAGE_COOLDOWN
from tests.fakes.device_oauth import FakeDeviceOAuth
from tests.fakes.dialects import DIALECTS, MODEL, ask
from tests.fakes.fixtures import CLIENT_KEY, Clock, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.providers.world import LATER, management, models, proxy_with, put, wait_login

FREE_USAGE_BODY = json.dumps(
    {
        "code": "subscription:free-usage-exhausted",
        "error": "You've used all the included free usage for model grok-4. "
        "Usage resets over a rolling 24-hour window.",
    }
).encode()


@pytest.fixture
async def xai_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[FakeUpstream, str]:
    fake = FakeUpstream()
    app = fake.app()
    app.router.add_post("/chatproxy/v1/responses", fake.responses)
    server = await aiohttp_server(app)
    return fake, str(server.make_url("")).rstrip("/")


def key_config(base: str, *keys: str) -> str:
    return "xai-api-key:\n" + "".join(
        f"  - api-key: {k}\n    base-url: {base}/v1\n    models: [{{name: {MODEL}}}]\n" for k in keys
    )


async def test_api_key_serves_every_client_dialect_streamed_upstream(
    xai_upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = xai_upstream
    proxy = await proxy_with(start_proxy, tmp_path / "auths", key_config(base, "xai-key-1"))
    for dialect in DIALECTS:
        for stream in (False, True):
            outcome = await ask(proxy, dialect, stream=stream)
            assert outcome.text == "Hello from fake", (dialect, stream, outcome)
    assert fake.problems == []
    assert len(fake.seen) == 8
    for seen in fake.seen:
        assert seen.path == "/v1/responses"
        assert seen.header("Authorization") == "Bearer xai-key-1"
        assert seen.json["stream"] is True  # xAI is always asked for SSE, whole answers are collected


async def test_fields_xai_refuses_are_left_out(
    xai_upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = xai_upstream
    proxy = await proxy_with(start_proxy, tmp_path / "auths", key_config(base, "xai-key-1"))
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    answer = await client.responses.create(
        model=MODEL,
        input="hi",
        extra_body={"previous_response_id": "resp_x", "safety_identifier": "u1", "prompt_cache_retention": "24h"},
    )
    assert answer.output_text == "Hello from fake"
    sent = fake.seen[-1].json
    assert not {"previous_response_id", "safety_identifier", "prompt_cache_retention", "stop"} & set(sent)


async def test_an_entry_without_base_url_is_dropped_with_a_warning(
    start_proxy: Starter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    proxy = await proxy_with(start_proxy, tmp_path / "auths", "xai-api-key:\n  - api-key: xai-key-1\n")
    assert "xai-api-key[0]: dropped" in caplog.text
    assert not any(m.startswith("grok") for m in await models(proxy))


async def test_free_usage_exhausted_cools_the_pair_for_a_day(
    xai_upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = xai_upstream
    clock = Clock()
    extra = "max-cooldown-seconds: 100000\n" + key_config(base, "xai-free", "xai-paid")
    proxy = await proxy_with(start_proxy, tmp_path / "auths", extra, clock)
    fake.fail(429, body=FREE_USAGE_BODY, key="xai-free", times=0)
    for _ in range(2):  # round-robin: one of them starts on the exhausted key and fails over
        assert (await ask(proxy, "responses")).text == "Hello from fake"
    (cooling,) = proxy.health.snapshot()
    assert cooling.reason == "quota" and cooling.seconds == FREE_USAGE_COOLDOWN
    assert len(fake.calls("xai-free")) == 1  # not asked again while it cools down


async def test_the_day_is_capped_by_max_cooldown_seconds(
    xai_upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = xai_upstream
    clock = Clock()
    proxy = await proxy_with(start_proxy, tmp_path / "auths", key_config(base, "xai-free"), clock)
    fake.fail(429, body=FREE_USAGE_BODY, times=0)
    outcome = await ask(proxy, "chat")
    assert outcome.status == 429
    (cooling,) = proxy.health.snapshot()
    assert cooling.seconds == 43_200  # the default max-cooldown-seconds


async def test_device_login_discovers_polls_and_saves_the_file(device_oauth: FakeDeviceOAuth, tmp_path: Path) -> None:
    announced: list[str] = []
    async with aiohttp.ClientSession() as session:
        path = await device_login(
            "xai",
            session=session,
            settings=ProviderSettings.from_env(device_oauth.env()),
            auth_dir=tmp_path,
            announce=announced.append,
        )
    assert path.name == "xai-grok@example.com.json"
    data = json.loads(path.read_text())
    assert data["type"] == "xai" and data["auth_kind"] == "oauth"
    assert data["email"] == "grok@example.com" and data["sub"] == "user-sub-42"
    assert data["token_endpoint"] == f"{device_oauth.base_url}/xai/oauth2/token"
    assert data["base_url"] == "https://api.x.ai/v1" and data["expired"].endswith("Z")
    assert data["refresh_token"] in device_oauth.refresh_tokens
    assert "GROK-1234" in announced[0] and "user_code=GROK-1234" in announced[0]
    assert device_oauth.requests["xai:discovery"] == 1 and device_oauth.requests["xai:poll"] == 2


async def test_polling_waits_at_least_the_floor_and_slows_down(device_oauth: FakeDeviceOAuth) -> None:
    device_oauth.slow_downs, device_oauth.pending_polls = 1, 1
    settings = XaiSettings(issuer_url=f"{device_oauth.base_url}/xai")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    device = DeviceCode("xai-device-1", "GROK-1234", "https://x", interval=1.0, expires_in=900,
                        context={"token_url": f"{device_oauth.base_url}/xai/oauth2/token"})  # fmt: skip
    async with aiohttp.ClientSession() as session:
        tokens = await poll_device_code(session, settings, device, sleep=sleep)
    assert tokens.access_token.startswith("at-xai-")
    assert waits == [10.0, 10.0]  # first poll at once; 5 s floor, +5 s after slow_down
    device_oauth.deny = True
    async with aiohttp.ClientSession() as session:
        with pytest.raises(OAuthError, match="access_denied"):
            await poll_device_code(session, settings, device, sleep=sleep)


async def test_management_device_login_then_requests_go_to_the_chat_proxy(
    device_oauth: FakeDeviceOAuth,
    xai_upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = xai_upstream
    for name, value in device_oauth.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_XAI_CHAT_URL", f"{base}/chatproxy/v1")
    alias = f"oauth-model-alias:\n  xai:\n    - name: grok-4.3\n      alias: {MODEL}\n"
    proxy = await proxy_with(start_proxy, tmp_path / "auths", alias)
    status, body = await management(proxy, "GET", "/xai-auth-url")
    assert status == 200 and body["flow"] == "device" and body["state"].startswith("xai-")
    assert body["user_code"] == "GROK-1234" and body["url"].endswith("user_code=GROK-1234")
    result = await wait_login(proxy, body["state"])
    assert result == {"status": "ok", "file": "xai-grok@example.com.json"}
    for _ in range(100):
        if MODEL in await models(proxy):
            break
    for dialect in DIALECTS:
        assert (await ask(proxy, dialect)).text == "Hello from fake", dialect
    seen = fake.seen[-1]
    assert seen.path == "/chatproxy/v1/responses" and seen.json["model"] == "grok-4.3"
    assert seen.header("X-XAI-Token-Auth") == "xai-grok-cli" and seen.header("x-grok-client-identifier")
    assert (seen.header("Authorization") or "").startswith("Bearer at-xai-")


async def test_bad_credentials_403_refreshes_once_at_the_saved_token_endpoint(
    device_oauth: FakeDeviceOAuth,
    xai_upstream: tuple[FakeUpstream, str],
    start_proxy: Starter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = xai_upstream
    monkeypatch.setenv("CLIPROXY_XAI_ISSUER_URL", f"{device_oauth.base_url}/xai")
    monkeypatch.setenv("CLIPROXY_XAI_API_URL", f"{base}/v1")
    auths = tmp_path / "auths"
    path = put(auths, "xai-a.json", {
        "type": "xai", "access_token": "at-xai-stale", "expired": LATER, "using_api": "true",
        "refresh_token": device_oauth.issue_refresh_token("xai"), "auth_kind": "oauth",
        "token_endpoint": f"{device_oauth.base_url}/xai/oauth2/token", "base_url": "https://api.x.ai/v1",
    })  # fmt: skip
    alias = f"oauth-model-alias:\n  xai:\n    - name: grok-4.3\n      alias: {MODEL}\n"
    proxy = await proxy_with(start_proxy, auths, alias)
    rejected = json.dumps({"code": "unauthenticated:bad-credentials", "error": "bad credentials"}).encode()
    fake.fail(403, body=rejected, key="at-xai-stale", times=0)
    assert (await ask(proxy, "claude", stream=True)).text == "Hello from fake"
    first, second = fake.seen
    assert first.path == second.path == "/v1/responses"  # `using_api: true`: the API, not the chat proxy
    assert first.header("Authorization") == "Bearer at-xai-stale"
    assert second.header("Authorization") == "Bearer at-xai-1"
    assert first.header("X-XAI-Token-Auth") is None
    assert device_oauth.requests["xai:refresh"] == 1 and device_oauth.requests["xai:discovery"] == 0
    saved = json.loads(path.read_text())
    assert saved["access_token"] == "at-xai-1" and saved["using_api"] == "true"
    assert saved["refresh_token"] in device_oauth.refresh_tokens and saved["email"] == "grok@example.com"
