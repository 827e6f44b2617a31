"""Codex (ChatGPT subscription) OAuth: logins, refresh, the credential file and its executor.

Token requests are form-encoded, as the Codex CLI sends them. The id_token's
`https://api.openai.com/auth` claims carry the ChatGPT account id (sent upstream as
`Chatgpt-Account-Id`) and the plan type (part of the file name). Requests go to the ChatGPT
Codex backend, which only streams and refuses several Responses fields (`fit_backend_body`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp

from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, filename_part, format_time, text_field
from cliproxy.credentials.jwt import decode_claims
from cliproxy.credentials.kinds import AuthFileKind, CodeLogin, DeviceLogin, apply_tokens, require_tokens
from cliproxy.credentials.oauth import (
    PKCE,
    TOKEN_REQUEST_TIMEOUT,
    DeviceCode,
    OAuthError,
    TokenSet,
    overrides_from_env,
    post_token_request,
    proxy_for,
)
from cliproxy.translate import Dialect
from cliproxy.upstream.base import FLAGGED_ACTIONS, GENERATE_ACTIONS, WEBSOCKET, WEBSOCKET_DROPPED, UpstreamCredential
from cliproxy.upstream.codex import websocket_headers

log = logging.getLogger(__name__)

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
LOGIN_SCOPE = "openid email profile offline_access"
REFRESH_SCOPE = "openid profile email"
CALLBACK_PORT = 1455
CALLBACK_PATH = "/auth/callback"
AUTH_CLAIMS = "https://api.openai.com/auth"
DEVICE_TIMEOUT_SECONDS = 15 * 60
DEFAULT_POLL_INTERVAL = 5.0
REFRESH_LEAD = timedelta(days=5)  # as CLIProxyAPI: refresh five days before expiry
ORIGINATOR = "codex_cli_rs"

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
    """The file a login writes, with the fields CLIProxyAPI writes."""
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


# --------------------------------------------------------------------------- the registry entry


def auth_claims(id_token: str) -> dict[str, Any]:
    """The `https://api.openai.com/auth` claims of an id_token (unverified: it is our own file)."""
    auth = decode_claims(id_token).get(AUTH_CLAIMS)
    return dict(auth) if isinstance(auth, Mapping) else {}


def facts(meta: Mapping[str, Any]) -> dict[str, str]:
    """Account id (the file's field, else the id_token's claim) and plan type."""
    claims = auth_claims(text_field(meta, "id_token"))
    account = text_field(meta, "account_id") or str(claims.get("chatgpt_account_id") or "").strip()
    return {"account_id": account, "plan_type": str(claims.get("chatgpt_plan_type") or "").strip()}


def merge_tokens(meta: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    """New tokens into the file; a refresh may be the first to tell us the account id."""
    out = apply_tokens(meta, tokens)
    if tokens.id_token and not out.get("account_id"):
        account = parse_id_token(tokens.id_token).account_id
        if account:
            out["account_id"] = account
    return out


def listing(cred: AuthFileCredential) -> dict[str, Any]:
    """The `id_token` summary CLIProxyAPI's `/auth-files` entries carry for Codex logins."""
    claims = auth_claims(text_field(cred.metadata, "id_token"))
    return {
        "id_token": {
            "chatgpt_account_id": cred.account_id,
            "plan_type": cred.plan_type,
            "chatgpt_subscription_active_start": claims.get("chatgpt_subscription_active_start"),
            "chatgpt_subscription_active_until": claims.get("chatgpt_subscription_active_until"),
        }
    }


class CodexOAuthExecutor(AuthFileExecutor[CodexSettings]):
    """The ChatGPT Codex backend: Responses over SSE only, Bearer plus the account-id headers."""

    kind: ClassVar[str] = "codex"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    always_stream: ClassVar[bool] = True
    rewrites_body: ClassVar[bool] = True
    forward_headers: ClassVar[tuple[str, ...]] = (
        "OpenAI-Beta",
        "User-Agent",
        "Originator",
        "Session_id",
        "Session-Id",
        "Version",
    )

    actions: ClassVar[frozenset[str]] = GENERATE_ACTIONS | {"compact", "search", WEBSOCKET}

    def served_actions(self, flags: frozenset[str]) -> frozenset[str]:
        """A login serves `/alpha/search` without asking; the upstream WebSocket with `websockets`."""
        return frozenset(a for a in self.actions if a != WEBSOCKET or FLAGGED_ACTIONS[a] in flags)

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        api = self.settings.api_url
        if action == "compact":
            return api.rstrip("/") + "/compact"
        if action == "search":
            return api.rstrip("/").removesuffix("/responses") + "/alpha/search"
        return api

    def websocket_url(self, cred: UpstreamCredential) -> str:
        return self.settings.api_url

    def websocket_frame(self, body: dict[str, Any], *, chained: bool) -> dict[str, Any]:
        frame = dict(body)
        fit_backend_body(frame)  # what the backend refuses over HTTP it refuses here too
        for key in WEBSOCKET_DROPPED:
            frame.pop(key, None)
        frame["type"] = "response.create"
        return frame

    def websocket_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        return {"Originator": ORIGINATOR, **websocket_headers(client)}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        return fit_backend_body(body)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        headers = {"Originator": ORIGINATOR, "Accept": "text/event-stream"}
        if self.source.account_id:
            headers["Chatgpt-Account-Id"] = self.source.account_id
        return headers

    async def fresh_auth(self, cred: UpstreamCredential, *, force_refresh: bool = False) -> dict[str, str]:
        headers = {"Authorization": "Bearer " + await self.token(force_refresh=force_refresh)}
        account = self.current().account_id  # a refresh may have brought the account id
        if account:
            headers["Chatgpt-Account-Id"] = account
        return headers


async def _exchange(
    session: aiohttp.ClientSession, settings: CodexSettings, code: str, _state: str, verifier: str, redirect_uri: str
) -> TokenSet:
    return await exchange_code(session, settings, code=code, verifier=verifier, redirect_uri=redirect_uri)


async def _refresh(
    session: aiohttp.ClientSession, settings: CodexSettings, meta: Mapping[str, Any], proxy_url: str
) -> TokenSet:
    return await refresh(session, settings, refresh_token=text_field(meta, "refresh_token"), proxy_url=proxy_url)


async def _poll(
    session: aiohttp.ClientSession, settings: CodexSettings, device: DeviceCode, timeout: float
) -> TokenSet:
    return await poll_device_code(session, settings, device, timeout=timeout)


async def _start(session: aiohttp.ClientSession, settings: CodexSettings) -> DeviceCode:
    return await request_device_code(session, settings)


PROVIDER: AuthFileKind[CodexSettings] = AuthFileKind(
    type="codex",
    owner="openai",
    settings=CodexSettings.from_env,
    executor=CodexOAuthExecutor,
    base_url=lambda _cred, settings: settings.api_url,
    credential_filename=credential_filename,
    check=require_tokens,
    facts=facts,
    subscription=True,
    refresh=_refresh,
    refresh_lead=REFRESH_LEAD,
    merge_tokens=merge_tokens,
    credential_json=credential_json,
    code_login=CodeLogin(
        web_name="codex",
        aliases=("codex", "openai"),
        callback=lambda settings: (settings.callback_port, settings.callback_path),
        authorize_url=lambda settings, pkce, state, redirect: authorize_url(
            settings, pkce=pkce, state=state, redirect_uri=redirect
        ),
        exchange=_exchange,
    ),
    device_login=DeviceLogin(start=_start, poll=_poll, timeout_seconds=DEVICE_TIMEOUT_SECONDS),
    listing=listing,
)
