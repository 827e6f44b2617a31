"""Kimi (Moonshot's Kimi Code subscription): device-code login, refresh, the file and its executor.

As CLIProxyAPI does, every call to `auth.kimi.com` names the device (`X-Msh-*` headers); a login
picks a new random device id and saves it, and its refreshes present it again. Polling starts
after one interval, waits at least 5 s between polls (a `slow_down` changes nothing) and gives
up after 15 minutes. Requests go to Kimi Code's OpenAI-chat endpoint with the same device
headers; the model name is Kimi's own spelling (`kimi-k2.5` → `k2.5`, `kimi-k2.7-code` →
`kimi-for-coding`), and the conversation is repaired where Kimi is stricter than OpenAI (a
tool call needs its reasoning, a tool result its call id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import platform
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from cliproxy import __version__
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import format_time, now_utc, text_field
from cliproxy.credentials.kinds import AuthFileKind, DeviceLogin, apply_tokens, require_tokens
from cliproxy.credentials.oauth import (
    TOKEN_REQUEST_TIMEOUT,
    DeviceCode,
    OAuthError,
    TokenSet,
    overrides_from_env,
    post_token_request,
)
from cliproxy.translate import Dialect
from cliproxy.upstream.base import UpstreamCredential, join_url

CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_TIMEOUT_SECONDS = 15 * 60
REFRESH_LEAD = timedelta(minutes=5)
FALLBACK_DEVICE_ID = "cli-proxy-api-device"
NO_REASONING = "[reasoning unavailable]"
_THINKING_SUFFIX = re.compile(r"^(.*?)(\([^()]*\))?$")
LOGIN_OS_NAMES = {"Darwin": "macOS"}
ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}  # Go's names, as requests spell them

ENV_NAMES = {
    "client_id": "CLIPROXY_KIMI_CLIENT_ID",
    "auth_url": "CLIPROXY_KIMI_AUTH_URL",
    "device_code_url": "CLIPROXY_KIMI_DEVICE_CODE_URL",
    "token_url": "CLIPROXY_KIMI_TOKEN_URL",
    "api_url": "CLIPROXY_KIMI_API_URL",
    "poll_floor_seconds": "CLIPROXY_KIMI_DEVICE_POLL_SECONDS",
}


@dataclass(frozen=True)
class KimiSettings:
    """Endpoints of the Kimi flows; empty device/token URLs are `auth_url`'s standard paths."""

    client_id: str = CLIENT_ID
    auth_url: str = "https://auth.kimi.com"
    device_code_url: str = ""
    token_url: str = ""
    api_url: str = "https://api.kimi.com/coding"
    poll_floor_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KimiSettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))

    @property
    def device_endpoint(self) -> str:
        return self.device_code_url or join_url(self.auth_url, "/api/oauth/device_authorization")

    @property
    def token_endpoint(self) -> str:
        return self.token_url or join_url(self.auth_url, "/api/oauth/token")


def device_headers(device_id: str, *, login: bool) -> dict[str, str]:
    """The `X-Msh-*` headers: the OS named as the login spells it, or as requests do (Go's names)."""
    system, machine = platform.system(), platform.machine().lower()
    if login:
        model = f"{LOGIN_OS_NAMES.get(system, system)} {machine}"
    else:
        model = f"{system.lower()} {ARCH_NAMES.get(machine, machine)}"
    return {
        "X-Msh-Platform": "CLIProxyAPI",
        "X-Msh-Version": __version__,
        "X-Msh-Device-Name": socket.gethostname() or "unknown",
        "X-Msh-Device-Model": model,
        "X-Msh-Device-Id": device_id,
    }


def local_device_id() -> str:
    """The Kimi CLI's own device id on this machine, if it has one (else a fixed name)."""
    home = Path.home()
    for path in (
        home / ".local/share/kimi/device_id",
        home / "Library/Application Support/kimi/device_id",
        home / "AppData/Roaming/kimi/device_id",
    ):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return FALLBACK_DEVICE_ID


async def request_device_code(session: aiohttp.ClientSession, settings: KimiSettings) -> DeviceCode:
    device_id = str(uuid.uuid4())
    data = await post_token_request(
        session,
        settings.device_endpoint,
        form={"client_id": settings.client_id},
        headers=device_headers(device_id, login=True),
        step="kimi device code request",
    )
    code, user_code = str(data.get("device_code") or ""), str(data.get("user_code") or "")
    verify = str(data.get("verification_uri_complete") or data.get("verification_uri") or "")
    if not code or not user_code or not verify:
        raise OAuthError("kimi device code request failed: the answer lacks device_code, user_code or verification_uri")
    return DeviceCode(
        device_auth_id=code,
        user_code=user_code,
        verification_url=verify,
        interval=_seconds(data.get("interval"), 5.0),
        expires_in=_seconds(data.get("expires_in"), None),
        context={"device_id": device_id},
    )


def _seconds(value: Any, default: Any) -> Any:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default


async def poll_device_code(
    session: aiohttp.ClientSession,
    settings: KimiSettings,
    device: DeviceCode,
    *,
    timeout: float = DEVICE_TIMEOUT_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TokenSet:
    loop = asyncio.get_running_loop()
    limit = min(timeout, device.expires_in) if device.expires_in else timeout
    deadline = loop.time() + limit
    interval = max(device.interval, settings.poll_floor_seconds)
    device_id = device.context.get("device_id") or str(uuid.uuid4())
    form = {"client_id": settings.client_id, "device_code": device.device_auth_id, "grant_type": DEVICE_GRANT}
    while True:
        if loop.time() + interval > deadline:
            raise OAuthError("kimi device login timed out: the code was not approved in time")
        await sleep(interval)
        status, body = await _post_form(session, settings.token_endpoint, form, device_id)
        error = str(body.get("error") or "")
        if error in ("authorization_pending", "slow_down"):
            continue
        if error:
            raise OAuthError(f"kimi device login failed: {error}", status=status)
        if status != 200:
            raise OAuthError(f"kimi device login failed: HTTP {status}", status=status)
        tokens = TokenSet.from_json(body)
        return dataclasses.replace(tokens, raw={**tokens.raw, "device_id": device_id})


async def _post_form(
    session: aiohttp.ClientSession, url: str, form: Mapping[str, str], device_id: str
) -> tuple[int, dict[str, Any]]:
    headers = {"Accept": "application/json", **device_headers(device_id, login=True)}
    try:
        async with session.post(url, data=dict(form), headers=headers, timeout=TOKEN_REQUEST_TIMEOUT) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else {}
            return resp.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OAuthError(f"kimi device poll failed: {exc.__class__.__name__}") from None


async def refresh(
    session: aiohttp.ClientSession, settings: KimiSettings, meta: Mapping[str, Any], proxy_url: str = ""
) -> TokenSet:
    token = text_field(meta, "refresh_token")
    if not token:
        raise OAuthError("kimi: the credential has no refresh_token; log in again")
    device_id = text_field(meta, "device_id") or local_device_id()
    try:
        data = await post_token_request(
            session,
            settings.token_endpoint,
            form={"client_id": settings.client_id, "grant_type": "refresh_token", "refresh_token": token},
            headers=device_headers(device_id, login=True),
            step="kimi token refresh",
            proxy_url=proxy_url,
        )
    except OAuthError as exc:
        if exc.status in (401, 403):
            raise OAuthError("kimi token refresh failed: refresh token rejected", status=exc.status) from None
        raise
    return TokenSet.from_json(data)


def credential_json(tokens: TokenSet) -> dict[str, Any]:
    """The file a login writes, with the fields CLIProxyAPI writes."""
    return {
        "type": "kimi",
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": tokens.token_type or "Bearer",
        "scope": str(tokens.raw.get("scope") or ""),
        "timestamp": int(tokens.received_at.timestamp() * 1000),
        "expired": format_time(tokens.expires_at) if tokens.expires_at else "",
        "device_id": str(tokens.raw.get("device_id") or ""),
    }


def credential_filename(data: Mapping[str, Any]) -> str:
    stamp = data.get("timestamp")
    return f"kimi-{stamp if isinstance(stamp, int) else int(now_utc().timestamp() * 1000)}.json"


# --------------------------------------------------------------------------- requests


def upstream_model(name: str) -> str:
    """Kimi Code's spelling of a model id, as CLIProxyAPI normalises it (a thinking suffix kept)."""
    match = _THINKING_SUFFIX.match(name.strip())
    base, suffix = (match.group(1), match.group(2) or "") if match else (name, "")
    base = base.lower()
    if base.endswith("[1m]"):
        base = base[:-4]
    speed = ""
    if base.endswith("-highspeed"):
        base, speed = base[: -len("-highspeed")], "-highspeed"
    if base in ("kimi-k2.7-code", "k2.7-code", "kimi-for-coding", "for-coding"):
        return "kimi-for-coding" + speed + suffix
    base += speed
    return (base[len("kimi-") :] if base.startswith("kimi-") else base) + suffix


def _reasoning(message: Mapping[str, Any]) -> str:
    value = message.get("reasoning_content")
    return value if isinstance(value, str) and value.strip() else ""


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def repair_messages(messages: list[Any]) -> bool:
    """Kimi's rules for a conversation with tools, in place; True when anything changed.

    Empty assistant messages are dropped; an assistant tool call without reasoning gets the latest
    reasoning seen (else its own text, else a placeholder); a tool result without `tool_call_id`
    takes `call_id`, or the one call still waiting for a result.
    """
    changed = False
    kept: list[Any] = []
    latest = ""
    pending: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            kept.append(message)
            continue
        role = message.get("role")
        if role == "assistant":
            calls = message.get("tool_calls")
            if not calls and not _text(message).strip() and not _reasoning(message):
                changed = True
                continue
            latest = _reasoning(message) or latest
            if calls:
                if not _reasoning(message):
                    message["reasoning_content"] = latest or _text(message).strip() or NO_REASONING
                    changed = True
                pending = [str(c.get("id")) for c in calls if isinstance(c, dict) and c.get("id")]
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                call_id = message.get("call_id") or (pending[0] if len(pending) == 1 else None)
                if call_id:
                    message["tool_call_id"] = call_id
                    message.pop("call_id", None)
                    changed = True
            if call_id in pending:
                pending.remove(call_id)
        kept.append(message)
    if len(kept) != len(messages):
        messages[:] = kept
    return changed


def fit_body(body: dict[str, Any]) -> bool:
    """A chat body as Kimi Code takes it, in place; True when anything changed."""
    changed = False
    model = body.get("model")
    if isinstance(model, str) and upstream_model(model) != model:
        body["model"] = upstream_model(model)
        changed = True
    messages = body.get("messages")
    if isinstance(messages, list) and repair_messages(messages):
        changed = True
    effort = body.pop("reasoning_effort", None)
    if isinstance(effort, str):
        body["thinking"] = {"type": "disabled"} if effort == "none" else {"type": "enabled", "effort": effort}
        changed = True
    if body.get("stream") is True:
        options = body.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            changed = True
    return changed


class KimiOAuthExecutor(AuthFileExecutor[KimiSettings]):
    """Kimi Code's OpenAI-chat endpoint with a login: Bearer plus the device headers."""

    kind: ClassVar[str] = "kimi"
    dialect: ClassVar[Dialect] = Dialect.CHAT
    rewrites_body: ClassVar[bool] = True

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return join_url(self.settings.api_url, "/v1/chat/completions")

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        device_id = text_field(self.source.metadata, "device_id") or local_device_id()
        return {"User-Agent": f"CLIProxyAPI/{__version__}", **device_headers(device_id, login=False)}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        return fit_body(body)


def merge_tokens(meta: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    out = apply_tokens(meta, tokens)
    if tokens.raw.get("scope"):
        out["scope"] = tokens.raw["scope"]
    out["timestamp"] = int(tokens.received_at.timestamp() * 1000)
    return out


async def _start(session: aiohttp.ClientSession, settings: KimiSettings) -> DeviceCode:
    return await request_device_code(session, settings)


async def _poll(session: aiohttp.ClientSession, settings: KimiSettings, device: DeviceCode, timeout: float) -> TokenSet:
    return await poll_device_code(session, settings, device, timeout=timeout)


PROVIDER: AuthFileKind[KimiSettings] = AuthFileKind(
    type="kimi",
    owner="moonshot",
    settings=KimiSettings.from_env,
    executor=KimiOAuthExecutor,
    base_url=lambda _cred, settings: join_url(settings.api_url, "/v1"),
    credential_filename=credential_filename,
    check=require_tokens,
    subscription=True,
    refresh=refresh,
    refresh_lead=REFRESH_LEAD,
    merge_tokens=merge_tokens,
    credential_json=credential_json,
    device_login=DeviceLogin(
        start=_start, poll=_poll, timeout_seconds=DEVICE_TIMEOUT_SECONDS, web_name="kimi", state_prefix="kmi-"
    ),
)
