"""xAI (Grok) logins: device code over OIDC discovery, refresh, the credential file and its executor.

As CLIProxyAPI does: the device and token endpoints come from `auth.x.ai`'s OpenID discovery and
must be https on an `x.ai` host (on the issuer's own host when `CLIPROXY_XAI_ISSUER_URL` points
elsewhere); polling starts at once, waits at least 5 s between polls and 5 s more after each
`slow_down`, for at most 30 minutes. The token endpoint used is saved in the file, so a refresh
needs no discovery. A login's requests go to xAI's CLI chat proxy with the Grok CLI's identity
headers unless the file says `using_api: true` (then to the API, or its own `base_url`);
compact calls and upstream WebSockets always go to the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, filename_part, format_time, text_field
from cliproxy.credentials.jwt import decode_claims
from cliproxy.credentials.kinds import AuthFileKind, DeviceLogin, apply_tokens, require_tokens
from cliproxy.credentials.oauth import (
    TOKEN_REQUEST_TIMEOUT,
    DeviceCode,
    OAuthError,
    TokenSet,
    overrides_from_env,
    post_token_request,
    proxy_for,
)
from cliproxy.translate import Dialect
from cliproxy.upstream.base import UpstreamCredential, join_url
from cliproxy.upstream.xai import ACTIONS, action_path, bad_credentials, fit_body, fit_compact_body, websocket_frame

log = logging.getLogger(__name__)

CLIENT_ID = "b1a00492-073a-47ea-816f-4c329264a828"
SCOPE = "openid profile email offline_access grok-cli:access api:access"
ISSUER = "https://auth.x.ai"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_TIMEOUT_SECONDS = 30 * 60
REFRESH_LEAD = timedelta(minutes=5)
CLI_VERSION = "0.2.120"
# What the CLI chat proxy expects of the Grok CLI (it refuses other clients).
CHAT_PROXY_HEADERS = {
    "X-XAI-Token-Auth": "xai-grok-cli",
    "x-grok-client-version": CLI_VERSION,
    "User-Agent": f"xai-grok-workspace/{CLI_VERSION}",
    "x-grok-client-identifier": "grok-shell",
    "x-authenticateresponse": "authenticate-response",
}
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})

ENV_NAMES = {
    "client_id": "CLIPROXY_XAI_CLIENT_ID",
    "issuer_url": "CLIPROXY_XAI_ISSUER_URL",
    "device_code_url": "CLIPROXY_XAI_DEVICE_CODE_URL",
    "token_url": "CLIPROXY_XAI_TOKEN_URL",
    "api_url": "CLIPROXY_XAI_API_URL",
    "chat_url": "CLIPROXY_XAI_CHAT_URL",
    "poll_floor_seconds": "CLIPROXY_XAI_DEVICE_POLL_SECONDS",
}


@dataclass(frozen=True)
class XaiSettings:
    """Endpoints of the xAI flows; empty device/token URLs are discovered from `issuer_url`."""

    client_id: str = CLIENT_ID
    issuer_url: str = ISSUER
    device_code_url: str = ""
    token_url: str = ""
    api_url: str = "https://api.x.ai/v1"
    chat_url: str = "https://cli-chat-proxy.grok.com/v1"
    poll_floor_seconds: float = 5.0  # the shortest wait between two polls

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> XaiSettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))


def trusted_endpoint(settings: XaiSettings, url: str) -> bool:
    """https on an `x.ai` host, or on the issuer's own host when the issuer was pointed elsewhere."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if settings.issuer_url.rstrip("/") != ISSUER:
        return host == (urlsplit(settings.issuer_url).hostname or "").lower()
    return parts.scheme == "https" and (host == "x.ai" or host.endswith(".x.ai"))


async def discover(session: aiohttp.ClientSession, settings: XaiSettings, proxy_url: str = "") -> tuple[str, str]:
    """(device endpoint, token endpoint): the configured ones, else the issuer's OpenID discovery."""
    if settings.device_code_url and settings.token_url:
        return settings.device_code_url, settings.token_url
    url = settings.issuer_url.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with session.get(url, proxy=proxy_for(proxy_url), timeout=TOKEN_REQUEST_TIMEOUT) as resp:
            if resp.status != 200:
                raise OAuthError(f"xai discovery failed: HTTP {resp.status}", status=resp.status)
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OAuthError(f"xai discovery failed: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise OAuthError("xai discovery failed: the answer is not a JSON object")
    device = settings.device_code_url or str(data.get("device_authorization_endpoint") or "")
    token = settings.token_url or str(data.get("token_endpoint") or "")
    for name, value in (("device_authorization_endpoint", device), ("token_endpoint", token)):
        if not value or not trusted_endpoint(settings, value):
            raise OAuthError(f"xai discovery failed: {name} is missing or not an x.ai https URL")
    return device, token


async def request_device_code(session: aiohttp.ClientSession, settings: XaiSettings) -> DeviceCode:
    device_url, token_url = await discover(session, settings)
    data = await post_token_request(
        session,
        device_url,
        form={"client_id": settings.client_id, "scope": SCOPE},
        step="xai device code request",
    )
    code, user_code = str(data.get("device_code") or ""), str(data.get("user_code") or "")
    verify = str(data.get("verification_uri_complete") or data.get("verification_uri") or "")
    if not code or not user_code or not verify:
        raise OAuthError("xai device code request failed: the answer lacks device_code, user_code or verification_uri")
    return DeviceCode(
        device_auth_id=code,
        user_code=user_code,
        verification_url=verify,
        interval=_number(data.get("interval"), 5.0),
        expires_in=_number(data.get("expires_in"), None),
        context={"token_url": token_url},
    )


def _number(value: Any, default: Any) -> Any:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default


async def poll_device_code(
    session: aiohttp.ClientSession,
    settings: XaiSettings,
    device: DeviceCode,
    *,
    timeout: float = DEVICE_TIMEOUT_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TokenSet:
    """RFC 8628 polling: the first poll at once; an `error` field is read before the status."""
    loop = asyncio.get_running_loop()
    limit = min(timeout, device.expires_in) if device.expires_in else timeout
    deadline = loop.time() + limit
    interval = max(device.interval, settings.poll_floor_seconds)
    token_url = device.context.get("token_url") or settings.token_url
    form = {"grant_type": DEVICE_GRANT, "device_code": device.device_auth_id, "client_id": settings.client_id}
    while True:
        status, body = await _post_form(session, token_url, form)
        error = str(body.get("error") or "")
        if error == "slow_down":
            interval += 5
        elif error and error != "authorization_pending":
            raise OAuthError(f"xai device login failed: {error}", status=status)
        elif not error and status == 200:
            tokens = TokenSet.from_json(body)
            return dataclasses.replace(tokens, raw={**tokens.raw, "token_endpoint": token_url})
        elif not error:
            raise OAuthError(f"xai device login failed: HTTP {status}", status=status)
        if loop.time() + interval > deadline:
            raise OAuthError("xai device login timed out: the code was not approved in time")
        await sleep(interval)


async def _post_form(session: aiohttp.ClientSession, url: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    try:
        async with session.post(
            url, data=dict(form), headers={"Accept": "application/json"}, timeout=TOKEN_REQUEST_TIMEOUT
        ) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else {}
            return resp.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OAuthError(f"xai device poll failed: {exc.__class__.__name__}") from None


async def refresh(
    session: aiohttp.ClientSession, settings: XaiSettings, meta: Mapping[str, Any], proxy_url: str = ""
) -> TokenSet:
    """Spend the refresh token at the file's token endpoint (rediscovered when it has none)."""
    token = text_field(meta, "refresh_token")
    if not token:
        raise OAuthError("xai: the credential has no refresh_token; log in again")
    token_url = text_field(meta, "token_endpoint")
    if not token_url or not trusted_endpoint(settings, token_url):
        token_url = settings.token_url or (await discover(session, settings, proxy_url))[1]
    data = await post_token_request(
        session,
        token_url,
        form={"grant_type": "refresh_token", "client_id": settings.client_id, "refresh_token": token},
        step="xai token refresh",
        proxy_url=proxy_url,
    )
    tokens = TokenSet.from_json(data)
    return dataclasses.replace(tokens, raw={**tokens.raw, "token_endpoint": token_url})


def identity(id_token: str) -> tuple[str, str]:
    """(email, sub) from the id_token, read unverified as CLIProxyAPI does."""
    claims = decode_claims(id_token)
    return str(claims.get("email") or ""), str(claims.get("sub") or "")


def credential_json(tokens: TokenSet) -> dict[str, Any]:
    """The file a login writes, with the fields CLIProxyAPI writes."""
    email, sub = identity(tokens.id_token)
    return {
        "type": "xai",
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "token_type": tokens.token_type or "Bearer",
        "expires_in": tokens.expires_in,
        "expired": format_time(tokens.expires_at) if tokens.expires_at else "",
        "last_refresh": format_time(tokens.received_at),
        "email": email,
        "sub": sub,
        "base_url": str(tokens.raw.get("base_url") or XaiSettings.api_url),
        "token_endpoint": str(tokens.raw.get("token_endpoint") or ""),
        "auth_kind": "oauth",
    }


def credential_filename(data: Mapping[str, Any]) -> str:
    return f"xai-{filename_part(str(data.get('email') or data.get('sub') or 'account'))}.json"


def merge_tokens(meta: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    out = apply_tokens(meta, tokens)
    email, sub = identity(tokens.id_token)
    out.update({k: v for k, v in (("email", email), ("sub", sub)) if v})
    if tokens.token_type:
        out["token_type"] = tokens.token_type
    if tokens.expires_in is not None:
        out["expires_in"] = tokens.expires_in
    if tokens.raw.get("token_endpoint"):
        out["token_endpoint"] = tokens.raw["token_endpoint"]
    out.setdefault("base_url", XaiSettings.api_url)
    out["auth_kind"] = "oauth"
    return out


def _flag(meta: Mapping[str, Any], key: str) -> bool | None:
    value = meta.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip().lower() in TRUE_WORDS
    return None


@dataclass(frozen=True)
class Bases:
    """Where one login's requests go: chat, compact (and images), the upstream WebSocket."""

    chat: str
    api: str
    chat_proxy: bool


def bases(meta: Mapping[str, Any], settings: XaiSettings) -> Bases:
    """As CLIProxyAPI picks them: `using_api` (default false for logins) sends chat to the API."""
    own = text_field(meta, "base_url").rstrip("/")
    official, proxy = settings.api_url.rstrip("/"), settings.chat_url.rstrip("/")
    if own in (XaiSettings.api_url, official):  # what a login writes: the API, wherever it is configured
        own = ""
    using_api = _flag(meta, "using_api")
    if using_api is None:
        using_api = text_field(meta, "auth_kind") not in ("", "oauth")
    chat = (own or official) if using_api else (own or proxy)
    api = own if own and own != proxy else official
    return Bases(chat=chat, api=api, chat_proxy=chat == proxy)


class XaiOAuthExecutor(AuthFileExecutor[XaiSettings]):
    """xAI's Responses API with a login: the CLI chat proxy (or the API), SSE only."""

    kind: ClassVar[str] = "xai"
    dialect: ClassVar[Dialect] = Dialect.RESPONSES
    always_stream: ClassVar[bool] = True
    rewrites_body: ClassVar[bool] = True
    actions: ClassVar[frozenset[str]] = ACTIONS
    synthesizes_warmup: ClassVar[bool] = True

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        where = bases(self.source.metadata, self.settings)
        return join_url(where.chat if action == "generate" else where.api, action_path(action))

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        if bases(self.source.metadata, self.settings).chat_proxy:
            return dict(CHAT_PROXY_HEADERS)
        return {}

    def prepare_body(self, body: dict[str, Any]) -> bool:
        return fit_body(body)

    def fit_action_body(self, action: str, body: dict[str, Any]) -> bool:
        return fit_compact_body(body) if action == "compact" else False

    def upstream_status(self, status: int, body: bytes) -> int:
        return 401 if bad_credentials(status, body) else status

    def websocket_frame(self, body: dict[str, Any], *, chained: bool) -> dict[str, Any]:
        return websocket_frame(body, chained=chained)

    def websocket_url(self, cred: UpstreamCredential) -> str:
        return join_url(bases(self.source.metadata, self.settings).api, "/responses")


def facts(meta: Mapping[str, Any]) -> dict[str, str]:
    email, sub = identity(text_field(meta, "id_token"))
    return {"email": text_field(meta, "email") or email, "account_id": text_field(meta, "sub") or sub}


def listing(cred: AuthFileCredential) -> dict[str, Any]:
    return {"base_url": bases(cred.metadata, XaiSettings()).chat}


async def _start(session: aiohttp.ClientSession, settings: XaiSettings) -> DeviceCode:
    return await request_device_code(session, settings)


async def _poll(session: aiohttp.ClientSession, settings: XaiSettings, device: DeviceCode, timeout: float) -> TokenSet:
    return await poll_device_code(session, settings, device, timeout=timeout)


PROVIDER: AuthFileKind[XaiSettings] = AuthFileKind(
    type="xai",
    owner="xai",
    settings=XaiSettings.from_env,
    executor=XaiOAuthExecutor,
    base_url=lambda cred, settings: bases(cred.metadata, settings).chat,
    credential_filename=credential_filename,
    check=require_tokens,
    facts=facts,
    subscription=True,
    refresh=refresh,
    refresh_lead=REFRESH_LEAD,
    merge_tokens=merge_tokens,
    credential_json=credential_json,
    device_login=DeviceLogin(
        start=_start, poll=_poll, timeout_seconds=DEVICE_TIMEOUT_SECONDS, web_name="xai", state_prefix="xai-"
    ),
    listing=listing,
)
