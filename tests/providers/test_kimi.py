"""Kimi end to end: device-code login, refresh with the saved device id, requests from every dialect.

The fake OAuth server plays `auth.kimi.com` (it refuses calls without the `X-Msh-*` device headers);
the fake upstream's OpenAI chat endpoint plays `api.kimi.com/coding/v1/chat/completions`.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from cliproxy.credentials.login import device_login
from cliproxy.credentials.oauth import DeviceCode
from cliproxy.credentials.providers.kimi import KimiSettings, poll_device_code, upstream_model
from cliproxy.credentials.registry import ProviderSettings
from tests.fakes.device_oauth import FakeDeviceOAuth
from tests.fakes.dialects import DIALECTS, MODEL, ask
from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream
from tests.providers.world import EARLIER, LATER, management, proxy_with, put, wait_login

ALIAS = f"oauth-model-alias:\n  kimi:\n    - name: kimi-k2.5\n      alias: {MODEL}\n"


@pytest.fixture
def kimi_env(
    device_oauth: FakeDeviceOAuth, upstream: tuple[FakeUpstream, str], monkeypatch: pytest.MonkeyPatch
) -> FakeUpstream:
    fake, base = upstream
    for name, value in device_oauth.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPROXY_KIMI_API_URL", base)
    return fake


def test_model_names_are_kimis_own() -> None:
    assert upstream_model("kimi-k2.5") == "k2.5"
    assert upstream_model("Kimi-K2.7-Code") == "kimi-for-coding"
    assert upstream_model("k2.7-code-highspeed") == "kimi-for-coding-highspeed"
    assert upstream_model("kimi-k3[1m](high)") == "k3(high)"


async def test_device_login_saves_the_device_id_it_logged_in_with(
    device_oauth: FakeDeviceOAuth, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        path = await device_login(
            "kimi",
            session=session,
            settings=ProviderSettings.from_env(device_oauth.env()),
            auth_dir=tmp_path,
            announce=lambda _m: None,
        )
    assert path.name.startswith("kimi-") and path.name[5:-5].isdigit()
    data = json.loads(path.read_text())
    assert data["type"] == "kimi" and data["scope"] == "kimi-code" and data["expired"].endswith("Z")
    assert isinstance(data["timestamp"], int)
    assert set(device_oauth.kimi_device_ids) == {data["device_id"]}  # start and every poll: one device
    assert device_oauth.requests["kimi:poll"] == 2


async def test_polling_waits_one_interval_first_and_ignores_slow_down(device_oauth: FakeDeviceOAuth) -> None:
    device_oauth.slow_downs, device_oauth.pending_polls = 1, 1
    settings = KimiSettings(auth_url=f"{device_oauth.base_url}/kimi")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    device = DeviceCode("kimi-device-1", "KIMI-5678", "https://x", interval=2.0, expires_in=900,
                        context={"device_id": "dev-a"})  # fmt: skip
    async with aiohttp.ClientSession() as session:
        tokens = await poll_device_code(session, settings, device, sleep=sleep)
    assert tokens.access_token.startswith("at-kimi-") and tokens.raw["device_id"] == "dev-a"
    assert waits == [5.0, 5.0, 5.0]


async def test_management_device_login(
    device_oauth: FakeDeviceOAuth, kimi_env: FakeUpstream, start_proxy: Starter, tmp_path: Path
) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths")
    status, body = await management(proxy, "GET", "/kimi-auth-url")
    assert status == 200 and body["flow"] == "device" and body["state"].startswith("kmi-")
    assert body["user_code"] == "KIMI-5678" and body["expires_in"] == 900
    result = await wait_login(proxy, body["state"])
    assert result["status"] == "ok" and result["file"].startswith("kimi-")
    assert (tmp_path / "auths" / result["file"]).exists()


async def test_every_dialect_reaches_kimi_chat_with_device_headers(
    device_oauth: FakeDeviceOAuth, kimi_env: FakeUpstream, start_proxy: Starter, tmp_path: Path
) -> None:
    auths = tmp_path / "auths"
    put(auths, "kimi-1.json", {
        "type": "kimi", "access_token": "at-kimi-live", "expired": LATER, "device_id": "dev-saved",
        "refresh_token": device_oauth.issue_refresh_token("kimi"),
    })  # fmt: skip
    proxy = await proxy_with(start_proxy, auths, ALIAS)
    for dialect in DIALECTS:
        for stream in (False, True):
            assert (await ask(proxy, dialect, stream=stream)).text == "Hello from fake", (dialect, stream)
    assert kimi_env.problems == []
    for seen in kimi_env.seen:
        assert seen.path == "/v1/chat/completions"
        assert seen.header("Authorization") == "Bearer at-kimi-live"
        assert seen.header("X-Msh-Device-Id") == "dev-saved" and seen.header("X-Msh-Platform") == "CLIProxyAPI"
        assert (seen.header("User-Agent") or "").startswith("CLIProxyAPI/")
        body = seen.json
        assert body["model"] == "k2.5"
        if body.get("stream"):
            assert body["stream_options"]["include_usage"] is True


async def test_an_expired_token_is_refreshed_with_the_saved_device_id(
    device_oauth: FakeDeviceOAuth, kimi_env: FakeUpstream, start_proxy: Starter, tmp_path: Path
) -> None:
    auths = tmp_path / "auths"
    path = put(auths, "kimi-2.json", {
        "type": "kimi", "access_token": "at-kimi-old", "expired": EARLIER, "device_id": "dev-saved",
        "refresh_token": device_oauth.issue_refresh_token("kimi"),
    })  # fmt: skip
    proxy = await proxy_with(start_proxy, auths, ALIAS)
    assert (await ask(proxy, "chat")).text == "Hello from fake"
    assert device_oauth.requests["kimi:refresh"] == 1 and device_oauth.kimi_device_ids == ["dev-saved"]
    assert kimi_env.seen[-1].header("Authorization") == "Bearer at-kimi-1"
    saved = json.loads(path.read_text())
    assert saved["access_token"] == "at-kimi-1" and saved["device_id"] == "dev-saved"


async def test_tool_turns_are_repaired_the_way_kimi_wants_them(
    device_oauth: FakeDeviceOAuth, kimi_env: FakeUpstream, start_proxy: Starter, tmp_path: Path
) -> None:
    auths = tmp_path / "auths"
    put(auths, "kimi-1.json", {"type": "kimi", "access_token": "at-kimi-live", "expired": LATER})
    proxy = await proxy_with(start_proxy, auths, ALIAS)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    body = {
        "model": MODEL,
        "reasoning_effort": "high",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "let me look", "tool_calls": [call]},
            {"role": "tool", "call_id": "call_1", "content": "sunny"},
        ],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            proxy.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
    sent = kimi_env.seen[-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["reasoning_content"] == "let me look"
    assert sent["messages"][2]["tool_call_id"] == "call_1"
    assert sent["thinking"] == {"type": "enabled", "effort": "high"} and "reasoning_effort" not in sent
