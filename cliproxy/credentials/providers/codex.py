"""Codex (ChatGPT subscription) OAuth: PKCE login, device-code login, refresh, the credential file.

Token requests are form-encoded (spec §7.3). The id_token's `https://api.openai.com/auth` claims
carry the ChatGPT account id (sent upstream as `Chatgpt-Account-Id`) and the plan type (which
picks the model catalog and is part of the file name).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from cliproxy.credentials.jwt import decode_claims
from cliproxy.credentials.oauth import (
    PKCE,
    TOKEN_REQUEST_TIMEOUT,
    OAuthError,
    TokenSet,
    overrides_from_env,
    post_token_request,
    proxy_for,
)
from cliproxy.credentials.store import format_time

log = logging.getLogger(__name__)

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
LOGIN_SCOPE = "openid email profile offline_access"
REFRESH_SCOPE = "openid profile email"
CALLBACK_PORT = 1455
CALLBACK_PATH = "/auth/callback"
AUTH_CLAIMS = "https://api.openai.com/auth"
DEVICE_TIMEOUT_SECONDS = 15 * 60
DEFAULT_POLL_INTERVAL = 5.0

ENV_NAMES = {
    "client_id": "CLIPROXY_CODEX_CLIENT_ID",
    "authorize_url": "CLIPROXY_CODEX_AUTHORIZE_URL",
    "token_url": "CLIPROXY_CODEX_TOKEN_URL",
    "device_usercode_url": "CLIPROXY_CODEX_DEVICE_USERCODE_URL",
    "device_token_url": "CLIPROXY_CODEX_DEVICE_TOKEN_URL",
    "device_verify_url": "CLIPROXY_CODEX_DEVICE_VERIFY_URL",
    "device_redirect_uri": "CLIPROXY_CODEX_DEVICE_REDIRECT_URI",
    "api_url": "CLIPROXY_CODEX_API_URL",
    "callback_port": "CLIPROXY_CODEX_CALLBACK_PORT",
}


@dataclass(frozen=True)
class CodexSettings:
    """Endpoints of the Codex flows; `ENV_NAMES` maps each field to its override variable."""

    client_id: str = CLIENT_ID
    authorize_url: str = "https://auth.openai.com/oauth/authorize"
    token_url: str = "https://auth.openai.com/oauth/token"
    device_usercode_url: str = "https://auth.openai.com/api/accounts/deviceauth/usercode"
    device_token_url: str = "https://auth.openai.com/api/accounts/deviceauth/token"
    device_verify_url: str = "https://auth.openai.com/codex/device"
    device_redirect_uri: str = "https://auth.openai.com/deviceauth/callback"
    api_url: str = "https://chatgpt.com/backend-api/codex/responses"
    callback_port: int = CALLBACK_PORT
    callback_path: str = CALLBACK_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CodexSettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))


def authorize_url(settings: CodexSettings, *, pkce: PKCE, state: str, redirect_uri: str) -> str:
    params = {
        "client_id": settings.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": LOGIN_SCOPE,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "prompt": "login",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
    }
    return f"{settings.authorize_url}?{urlencode(params)}"


async def exchange_code(
    session: aiohttp.ClientSession,
    settings: CodexSettings,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    proxy_url: str = "",
) -> TokenSet:
    data = await post_token_request(
        session,
        settings.token_url,
        form={
            "grant_type": "authorization_code",
            "client_id": settings.client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        step="Failed to exchange authorization code for tokens",
        proxy_url=proxy_url,
    )
    return TokenSet.from_json(data)


async def refresh(
    session: aiohttp.ClientSession, settings: CodexSettings, *, refresh_token: str, proxy_url: str = ""
) -> TokenSet:
    if not refresh_token:
        raise OAuthError("codex: the credential has no refresh_token; log in again")
    data = await post_token_request(
        session,
        settings.token_url,
        form={
            "grant_type": "refresh_token",
            "client_id": settings.client_id,
            "refresh_token": refresh_token,
            "scope": REFRESH_SCOPE,
        },
        step="codex token refresh",
        proxy_url=proxy_url,
    )
    return TokenSet.from_json(data)


@dataclass(frozen=True)
class IdTokenInfo:
    """What the Codex id_token tells us (claims read unverified; see `jwt.decode_claims`)."""

    email: str = ""
    account_id: str = ""
    plan_type: str = ""
    subscription_active_start: str = ""
    subscription_active_until: str = ""


def parse_id_token(id_token: str) -> IdTokenInfo:
    claims = decode_claims(id_token)
    auth = claims.get(AUTH_CLAIMS)
    auth = auth if isinstance(auth, Mapping) else {}
    return IdTokenInfo(
        email=str(claims.get("email") or ""),
        account_id=str(auth.get("chatgpt_account_id") or ""),
        plan_type=str(auth.get("chatgpt_plan_type") or ""),
        subscription_active_start=str(auth.get("chatgpt_subscription_active_start") or ""),
        subscription_active_until=str(auth.get("chatgpt_subscription_active_until") or ""),
    )


def credential_json(tokens: TokenSet) -> dict[str, Any]:
    """The file a login writes (spec §7.2, `codex` row)."""
    info = parse_id_token(tokens.id_token)
    return {
        "type": "codex",
        "email": info.email,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "account_id": info.account_id,
        "expired": format_time(tokens.expires_at) if tokens.expires_at else "",
        "last_refresh": format_time(tokens.received_at),
    }


def credential_filename(data: Mapping[str, Any]) -> str:
    """`codex-<sha256(accountId)[:8]>-<email>-<plan>.json` (legacy shape when no account id)."""
    from cliproxy.credentials.login import filename_part

    info = parse_id_token(str(data.get("id_token") or ""))
    email = filename_part(str(data.get("email") or info.email or "unknown"))
    account_id = str(data.get("account_id") or info.account_id)
    plan = filename_part(info.plan_type.lower()) if info.plan_type else ""
    parts = ["codex"]
    if account_id:
        parts.append(hashlib.sha256(account_id.encode()).hexdigest()[:8])
    parts.append(email)
    if plan:
        parts.append(plan)
    return "-".join(parts) + ".json"


# --------------------------------------------------------------------------- device code


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to approve a headless login, and what we poll with."""

    device_auth_id: str
    user_code: str
    verification_url: str
    interval: float


async def request_device_code(
    session: aiohttp.ClientSession, settings: CodexSettings, *, proxy_url: str = ""
) -> DeviceCode:
    data = await post_token_request(
        session,
        settings.device_usercode_url,
        json_body={"client_id": settings.client_id},
        step="codex device code request",
        proxy_url=proxy_url,
    )
    device_id = str(data.get("device_auth_id") or "")
    user_code = str(data.get("user_code") or data.get("usercode") or "")
    if not device_id or not user_code:
        raise OAuthError("codex device code request failed: the response lacks device_auth_id or user_code")
    try:
        interval = float(data.get("interval", DEFAULT_POLL_INTERVAL))
    except (TypeError, ValueError):
        interval = DEFAULT_POLL_INTERVAL
    return DeviceCode(
        device_auth_id=device_id,
        user_code=user_code,
        verification_url=settings.device_verify_url,
        interval=max(interval, 0.0),
    )


async def poll_device_code(
    session: aiohttp.ClientSession,
    settings: CodexSettings,
    device: DeviceCode,
    *,
    timeout: float = DEVICE_TIMEOUT_SECONDS,
    proxy_url: str = "",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TokenSet:
    """Poll until the user approves, then exchange the returned code (+verifier) for tokens.

    The device endpoint answers 403/404 (or an `authorization_pending` error) while waiting; on
    approval it returns an authorization code and the PKCE verifier generated server-side.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = device.interval
    while True:
        try:
            async with session.post(
                settings.device_token_url,
                json={"device_auth_id": device.device_auth_id, "user_code": device.user_code},
                headers={"Accept": "application/json"},
                proxy=proxy_for(proxy_url),
                timeout=TOKEN_REQUEST_TIMEOUT,
            ) as resp:
                body: Any = await resp.json(content_type=None) if resp.content_length != 0 else {}
                status = resp.status
        except (aiohttp.ClientError, ValueError) as exc:
            log.debug("codex device poll: %s", exc.__class__.__name__)
            body, status = {}, 0
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        if isinstance(body, dict) and body.get("error") and isinstance(body["error"], dict):
            error = str(body["error"].get("code") or body["error"].get("type") or "")
        if status == 200 and isinstance(body, dict) and body.get("authorization_code"):
            verifier = str(body.get("code_verifier") or "")
            return await exchange_code(
                session,
                settings,
                code=str(body["authorization_code"]),
                verifier=verifier,
                redirect_uri=settings.device_redirect_uri,
                proxy_url=proxy_url,
            )
        if error == "slow_down":
            interval += 5
        elif status not in (0, 403, 404, 428) and error not in ("authorization_pending", ""):
            raise OAuthError(f"codex device login failed: {error or f'HTTP {status}'}", status=status)
        elif status >= 500:
            log.debug("codex device poll: HTTP %d, retrying", status)
        if loop.time() + interval > deadline:
            raise OAuthError("codex device login timed out: the code was not approved within 15 minutes")
        await sleep(interval)


# --------------------------------------------------------------------------- ChatGPT backend body

# Responses fields the ChatGPT Codex backend refuses ("Unsupported parameter: …"): token limits,
# sampling knobs and platform-only options. The Codex CLI never sends them; SDK clients often do.
BACKEND_UNSUPPORTED = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "context_management",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
)
BACKEND_SERVICE_TIERS = frozenset({"priority", "fast"})
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def fit_backend_body(body: dict[str, Any]) -> bool:
    """Make a Responses request acceptable to the ChatGPT Codex backend, in place.

    The backend only streams, never stores (`store` must be false, so multi-turn reasoning needs
    the encrypted reasoning content back), requires `instructions`, takes `input` as a list of
    items, and knows no `system` role (it is `developer`). Returns True when anything changed.
    """
    changed = False

    def put(key: str, value: Any) -> None:
        nonlocal changed
        if body.get(key) != value or key not in body:
            body[key] = value
            changed = True

    put("stream", True)
    put("store", False)
    if not isinstance(body.get("instructions"), str):
        put("instructions", "")
    text = body.get("input")
    if isinstance(text, str):
        put("input", [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}])
    for item in body.get("input") or ():
        if isinstance(item, dict) and item.get("role") == "system":
            item["role"] = "developer"
            changed = True
    for key in BACKEND_UNSUPPORTED:
        if key in body:
            del body[key]
            changed = True
    if "service_tier" in body and body["service_tier"] not in BACKEND_SERVICE_TIERS:
        del body["service_tier"]
        changed = True
    include = body.get("include")
    include = list(include) if isinstance(include, list) else []
    if ENCRYPTED_REASONING not in include:
        put("include", [*include, ENCRYPTED_REASONING])
    return changed
