"""Antigravity end to end: Google login with PKCE, the Code Assist envelope, host fallback, refresh.

The fake plays Google's OAuth (strict PKCE, the client secret) and Code Assist on two hosts
(`/daily` first, `/prod` second), refusing any envelope the real one would not take.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anthropic
import pytest
from aiohttp.test_utils import TestServer

from cliproxy.credentials.login import BrowserLogin, browser_login
from cliproxy.credentials.registry import ProviderSettings
from tests.fakes.code_assist import PROJECT, FakeCodeAssist
from tests.fakes.dialects import DIALECTS, MODEL, ask
from tests.fakes.fixtures import CLIENT_KEY, Clock, Starter
from tests.providers.world import EARLIER, LATER, management, proxy_with, put, wait_login

ALIAS = f"oauth-model-alias:\n  antigravity:\n    - name: gemini-3-flash\n      alias: {MODEL}\n"
RATE_LIMITED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
        ],
    }
}


@pytest.fixture
async def google(
    aiohttp_server: Callable[..., Awaitable[TestServer]], monkeypatch: pytest.MonkeyPatch
) -> FakeCodeAssist:
    fake = FakeCodeAssist()
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def logged_in(google: FakeCodeAssist, auths: Path, **fields: object) -> Path:
    data = {
        "type": "antigravity", "email": "agy@example.com", "project_id": PROJECT, "expired": LATER,
        "access_token": google.issue_access_token(), "refresh_token": google.issue_refresh_token(),
    }  # fmt: skip
    data.update(fields)
    return put(auths, "antigravity-agy@example.com.json", {k: v for k, v in data.items() if v is not None})


async def test_browser_login_with_pkce_finds_the_project(google: FakeCodeAssist, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:

        async def approve(url: str) -> None:  # the user's browser: consent, then the redirect home
            async with session.get(url, allow_redirects=False) as resp:
                assert resp.status == 302, await resp.text()
                location = resp.headers["Location"]
            async with session.get(location) as resp:
                assert resp.status == 200

        ui = BrowserLogin(announce=lambda _m: None, open_url=approve, port=0, host="127.0.0.1", timeout=10)
        path = await browser_login(
            "antigravity", session=session, settings=ProviderSettings.from_env(google.env()), auth_dir=tmp_path, ui=ui
        )
    assert path.name == "antigravity-agy@example.com.json"
    data = json.loads(path.read_text())
    assert data["type"] == "antigravity" and data["project_id"] == PROJECT and data["email"] == "agy@example.com"
    assert data["expires_in"] == 3599 and isinstance(data["timestamp"], int) and data["expired"].endswith("Z")
    assert data["refresh_token"] in google.refresh_tokens
    assert google.requests["code"] == 1 and google.requests["prod:v1internal:loadCodeAssist"] == 1


async def test_web_login_onboards_an_account_without_a_project(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    google.onboard = True
    proxy = await proxy_with(start_proxy, tmp_path / "auths")
    status, body = await management(proxy, "GET", "/antigravity-auth-url")
    assert status == 200 and "code_challenge=" in body["url"]
    async with aiohttp.ClientSession() as browser, browser.get(body["url"], allow_redirects=False) as resp:
        redirect = resp.headers["Location"]
    assert redirect.startswith("http://localhost:51121/oauth-callback?")
    status, _ = await management(
        proxy, "POST", "/oauth-callback", json={"provider": "antigravity", "redirect_url": redirect}
    )
    assert status == 200
    result = await wait_login(proxy, body["state"])
    assert result == {"status": "ok", "file": "antigravity-agy@example.com.json"}
    assert google.requests["daily:v1internal:onboardUser"] == 1
    saved = json.loads((tmp_path / "auths" / result["file"]).read_text())
    assert saved["project_id"] == PROJECT


async def test_every_dialect_in_the_code_assist_envelope(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    logged_in(google, tmp_path / "auths")
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    for dialect in DIALECTS:
        for stream in (False, True):
            assert (await ask(proxy, dialect, stream=stream)).text == "Hello from fake", (dialect, stream)
    assert google.problems == []
    assert {e.host for e in google.envelopes} == {"daily"}
    methods = [e.method for e in google.envelopes]
    assert methods.count("v1internal:generateContent") == methods.count("v1internal:streamGenerateContent") == 4
    for envelope in google.envelopes:
        body = envelope.body
        assert body["model"] == "gemini-3-flash" and body["project"] == PROJECT and body["requestType"] == "agent"
        assert body["requestId"].startswith("agent-") and "maxOutputTokens" not in body["request"].get(
            "generationConfig", {}
        )
        assert envelope.headers["User-Agent"].startswith("antigravity/hub/")
    sessions = {e.body["request"]["sessionId"] for e in google.envelopes}
    assert len(sessions) == 1  # the same first user text: the same session


async def test_a_tool_round_trip_and_a_token_count_from_claude(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    logged_in(google, tmp_path / "auths")
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ask_weather = [{"role": "user", "content": "weather in Paris?"}]
    first = await client.messages.create(model=MODEL, max_tokens=64, messages=ask_weather, tools=[tool])  # type: ignore[arg-type,list-item]
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}
    history = {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}
    second = await client.messages.create(
        model=MODEL, max_tokens=64, messages=[*ask_weather, history, result], tools=[tool]
    )  # type: ignore[arg-type,list-item]
    assert "".join(b.text for b in second.content if b.type == "text") == "Hello from fake"
    count = await client.messages.count_tokens(model=MODEL, messages=ask_weather)  # type: ignore[arg-type]
    assert count.input_tokens == 7
    assert google.envelopes[-1].method == "v1internal:countTokens" and set(google.envelopes[-1].body) == {"request"}
    assert google.problems == []


async def test_the_next_host_serves_after_a_429_or_no_capacity(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    logged_in(google, tmp_path / "auths")
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    google.refuse("daily", 429, RATE_LIMITED)
    google.refuse("daily", 503, {"error": {"code": 503, "message": "No capacity available for model"}})
    for _ in range(2):
        assert (await ask(proxy, "gemini")).text == "Hello from fake"
    assert [e.host for e in google.envelopes] == ["daily", "prod", "daily", "prod"]
    assert proxy.health.snapshot() == []
    google.refuse("daily", 400, {"error": {"code": 400, "message": "bad thing", "status": "INVALID_ARGUMENT"}})
    outcome = await ask(proxy, "gemini")
    assert outcome.status == 400 and "bad thing" in outcome.error
    assert google.envelopes[-1].host == "daily"  # any other answer is final


async def test_google_retry_hints_set_the_cooldown_when_every_host_refuses(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    logged_in(google, tmp_path / "auths")
    clock = Clock()
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS, clock)
    google.refuse("daily", 429, RATE_LIMITED)
    google.refuse("prod", 429, RATE_LIMITED)
    assert (await ask(proxy, "chat")).status == 429
    (cooling,) = proxy.health.snapshot()
    assert cooling.reason == "quota" and cooling.seconds == 12.5


async def test_an_expired_login_is_refreshed_and_its_missing_project_found(
    google: FakeCodeAssist, start_proxy: Starter, tmp_path: Path
) -> None:
    refresh_token = google.issue_refresh_token()
    path = logged_in(google, tmp_path / "auths", expired=EARLIER, project_id=None, access_token="ya29.old",
                     refresh_token=refresh_token)  # fmt: skip
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    assert (await ask(proxy, "responses", stream=True)).text == "Hello from fake"
    assert google.requests["refresh"] == 1
    fresh = f"ya29.agy-{google.issued}"  # the token the refresh issued
    envelope = google.envelopes[-1]
    assert envelope.headers["Authorization"] == f"Bearer {fresh}" and envelope.body["project"] == PROJECT
    saved = json.loads(path.read_text())
    assert saved["access_token"] == fresh and saved["refresh_token"] == refresh_token
    assert saved["project_id"] == PROJECT and saved["expires_in"] == 3599
