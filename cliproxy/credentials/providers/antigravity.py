"""Antigravity (Google's agent IDE subscription): Google login, refresh, project id, the executor.

The login is Google's authorization-code flow with PKCE and a localhost callback, offline access
and consent; the code is exchanged with the public client id and the client secret, which is not
shipped with cliproxy: set `CLIPROXY_ANTIGRAVITY_CLIENT_SECRET` (the one the Antigravity app
uses) to log in and refresh. After the exchange the login reads the email (userinfo) and the Code
Assist project (`loadCodeAssist`, else `onboardUser`); a login without a project fails, and a
refresh looks the project up again when the file has none. Requests are Gemini in Code Assist's
envelope (`upstream/code_assist.py`), sent to the daily host first, then the production one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp

from cliproxy import jsonio
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import CredentialFileError, filename_part, format_time, text_field
from cliproxy.credentials.kinds import AuthFileKind, CodeLogin, apply_tokens, require_tokens
from cliproxy.credentials.oauth import (
    PKCE,
    TOKEN_REQUEST_TIMEOUT,
    OAuthError,
    TokenSet,
    overrides_from_env,
    post_token_request,
    proxy_for,
)
from cliproxy.translate import Dialect
from cliproxy.upstream.base import Outgoing, UpstreamCredential
from cliproxy.upstream.clients import Sessions, UpstreamResponse
from cliproxy.upstream.code_assist import DEFAULT_BASES, method_path, post_with_fallback, wrap
from cliproxy.upstream.relayed import whole_response

log = logging.getLogger(__name__)

CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
SCOPES = " ".join(
    f"https://www.googleapis.com/auth/{s}"
    for s in ("cloud-platform", "userinfo.email", "userinfo.profile", "cclog", "experimentsandconfigs")
)
CALLBACK_PORT = 51121
CALLBACK_PATH = "/oauth-callback"
REFRESH_LEAD = timedelta(minutes=5)
APP_VERSION = "2.9.1"
ONBOARD_TRIES = 5
ONBOARD_PAUSE_SECONDS = 2.0
NODE_CLIENT = " google-api-nodejs-client/"

ENV_NAMES = {
    "client_id": "CLIPROXY_ANTIGRAVITY_CLIENT_ID",
    "client_secret": "CLIPROXY_ANTIGRAVITY_CLIENT_SECRET",
    "authorize_url": "CLIPROXY_ANTIGRAVITY_AUTHORIZE_URL",
    "token_url": "CLIPROXY_ANTIGRAVITY_TOKEN_URL",
    "userinfo_url": "CLIPROXY_ANTIGRAVITY_USERINFO_URL",
    "api_url": "CLIPROXY_ANTIGRAVITY_API_URL",
    "callback_port": "CLIPROXY_ANTIGRAVITY_CALLBACK_PORT",
}


@dataclass(frozen=True)
class AntigravitySettings:
    """Endpoints of the Antigravity flows. `api_url` lists the Code Assist hosts in the order they
    are tried (comma-separated): the daily host, then production."""

    client_id: str = CLIENT_ID
    client_secret: str = ""
    authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url: str = "https://oauth2.googleapis.com/token"
    userinfo_url: str = "https://www.googleapis.com/oauth2/v2/userinfo?alt=json"
    api_url: str = ",".join(DEFAULT_BASES)
    callback_port: int = CALLBACK_PORT
    callback_path: str = CALLBACK_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AntigravitySettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(b.strip().rstrip("/") for b in self.api_url.split(",") if b.strip())

    @property
    def user_agent(self) -> str:
        return f"antigravity/hub/{APP_VERSION} darwin/arm64"


def authorize_url(settings: AntigravitySettings, *, pkce: PKCE, state: str, redirect_uri: str) -> str:
    params = {
        "access_type": "offline",
        "client_id": settings.client_id,
        "prompt": "consent",
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": SCOPES,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
    }
    return f"{settings.authorize_url}?{urlencode(params)}"


def _client_form(settings: AntigravitySettings) -> dict[str, str]:
    form = {"client_id": settings.client_id}
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    return form


async def _get_json(
    session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any, step: str, proxy_url: str = ""
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "*/*", "User-Agent": AntigravitySettings().user_agent}
    try:
        async with session.request(
            method,
            url,
            data=jsonio.dumps(body) if body is not None else None,
            headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
            proxy=proxy_for(proxy_url),
            timeout=TOKEN_REQUEST_TIMEOUT,
        ) as resp:
            if resp.status >= 400:
                raise OAuthError(f"{step} failed: HTTP {resp.status}", status=resp.status)
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OAuthError(f"{step} failed: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise OAuthError(f"{step} failed: the answer is not a JSON object")
    return data


def _project_of(data: Mapping[str, Any]) -> str:
    for key in ("cloudaicompanionProject", "projectId", "project"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


async def find_project(
    session: aiohttp.ClientSession, settings: AntigravitySettings, token: str, proxy_url: str = ""
) -> str:
    """The Code Assist project of a login: `loadCodeAssist`, else onboard to its default tier."""
    bases = settings.bases
    loaded = await _get_json(
        session, "POST", f"{bases[-1]}/v1internal:loadCodeAssist", token,
        {"metadata": {"ideType": "ANTIGRAVITY"}}, "antigravity loadCodeAssist", proxy_url,
    )  # fmt: skip
    project = _project_of(loaded)
    if project:
        return project
    tiers = loaded.get("allowedTiers")
    tiers = tiers if isinstance(tiers, list) else []
    tier = next((t.get("id") for t in tiers if isinstance(t, dict) and t.get("isDefault")), None)
    current = loaded.get("currentTier")
    tier = tier or (current.get("id") if isinstance(current, dict) else None) or "free-tier"
    body = {
        "tier_id": tier,
        "metadata": {"ide_type": "ANTIGRAVITY", "ide_version": APP_VERSION, "ide_name": "antigravity"},
    }
    for attempt in range(ONBOARD_TRIES):
        answer = await _get_json(
            session, "POST", f"{bases[0]}/v1internal:onboardUser", token, body, "antigravity onboardUser", proxy_url
        )
        response = answer.get("response")
        if answer.get("done") is True and isinstance(response, dict):
            return _project_of(response)
        if attempt < ONBOARD_TRIES - 1:
            await asyncio.sleep(ONBOARD_PAUSE_SECONDS)
    return ""


async def exchange_code(
    session: aiohttp.ClientSession, settings: AntigravitySettings, *, code: str, verifier: str, redirect_uri: str
) -> TokenSet:
    """Code → tokens, then the email and the project the file needs (in `TokenSet.raw`)."""
    data = await post_token_request(
        session,
        settings.token_url,
        form={
            **_client_form(settings),
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
        },
        step="Failed to exchange authorization code for tokens",
    )
    tokens = TokenSet.from_json(data)
    info = await _get_json(session, "GET", settings.userinfo_url, tokens.access_token, None, "antigravity userinfo")
    project = await find_project(session, settings, tokens.access_token)
    if not project:
        raise OAuthError("antigravity login failed: no Code Assist project for this account")
    return dataclasses.replace(tokens, raw={**tokens.raw, "email": str(info.get("email") or ""), "project_id": project})


async def refresh(
    session: aiohttp.ClientSession, settings: AntigravitySettings, meta: Mapping[str, Any], proxy_url: str = ""
) -> TokenSet:
    token = text_field(meta, "refresh_token")
    if not token:
        raise OAuthError("antigravity: the credential has no refresh_token; log in again")
    data = await post_token_request(
        session,
        settings.token_url,
        form={**_client_form(settings), "grant_type": "refresh_token", "refresh_token": token},
        headers={"User-Agent": "Go-http-client/2.0"},
        step="antigravity token refresh",
        proxy_url=proxy_url,
    )
    tokens = TokenSet.from_json(data)
    if not text_field(meta, "project_id"):
        try:
            project = await find_project(session, settings, tokens.access_token, proxy_url)
        except OAuthError as exc:
            log.warning("antigravity: the project lookup after a refresh failed: %s", exc)
            project = ""
        if project:
            tokens = dataclasses.replace(tokens, raw={**tokens.raw, "project_id": project})
    return tokens


def credential_json(tokens: TokenSet) -> dict[str, Any]:
    """The file a login writes, with the fields CLIProxyAPI writes."""
    return {
        "type": "antigravity",
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
        "timestamp": int(tokens.received_at.timestamp() * 1000),
        "expired": format_time(tokens.expires_at) if tokens.expires_at else "",
        "email": str(tokens.raw.get("email") or ""),
        "project_id": str(tokens.raw.get("project_id") or ""),
    }


def credential_filename(data: Mapping[str, Any]) -> str:
    return f"antigravity-{filename_part(str(data.get('email') or data.get('project_id') or 'account'))}.json"


def merge_tokens(meta: Mapping[str, Any], tokens: TokenSet) -> dict[str, Any]:
    out = apply_tokens(meta, tokens)
    out["timestamp"] = int(tokens.received_at.timestamp() * 1000)
    if tokens.expires_in is not None:
        out["expires_in"] = tokens.expires_in
    if tokens.raw.get("project_id"):
        out["project_id"] = tokens.raw["project_id"]
    return out


def check(meta: dict[str, Any]) -> None:
    require_tokens(meta)
    if "project_id" in meta and not isinstance(meta["project_id"], str):
        raise CredentialFileError("antigravity: project_id must be a string")


def facts(meta: Mapping[str, Any]) -> dict[str, str]:
    return {"project_id": text_field(meta, "project_id")}


def user_agent(meta: Mapping[str, Any], settings: AntigravitySettings) -> str:
    own = text_field(meta, "user_agent")
    return own.split(NODE_CLIENT, 1)[0] if own else settings.user_agent


class AntigravityExecutor(AuthFileExecutor[AntigravitySettings]):
    """Gemini through Code Assist with an Antigravity login: the envelope, the host fallback."""

    kind: ClassVar[str] = "antigravity"
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    transport: ClassVar[bool] = True

    def bases(self) -> tuple[str, ...]:
        own = text_field(self.source.metadata, "base_url")
        return (own.rstrip("/"),) if own else self.settings.bases

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return self.bases()[0] + method_path(stream, action)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"User-Agent": user_agent(self.source.metadata, self.settings)}

    async def send(self, cred: UpstreamCredential, out: Outgoing, sessions: Sessions) -> UpstreamResponse:
        project = self.current().project_id
        if not project:
            error = {
                "error": {"code": 400, "message": "antigravity auth missing project_id", "status": "INVALID_ARGUMENT"}
            }
            return whole_response(400, {"Content-Type": "application/json"}, jsonio.dumps(error))
        request = jsonio.loads(out.payload)
        envelope = wrap(request, project=project, model=out.model, action=out.action)
        return await post_with_fallback(
            sessions,
            self.bases(),
            method_path(out.stream, out.action),
            payload=jsonio.dumps(envelope),
            headers=out.headers,
            proxy_url=out.proxy_url,
            timeouts=out.timeouts,
            stream=out.stream,
        )


async def _exchange(
    session: aiohttp.ClientSession,
    settings: AntigravitySettings,
    code: str,
    _state: str,
    verifier: str,
    redirect_uri: str,
) -> TokenSet:
    return await exchange_code(session, settings, code=code, verifier=verifier, redirect_uri=redirect_uri)


PROVIDER: AuthFileKind[AntigravitySettings] = AuthFileKind(
    type="antigravity",
    owner="antigravity",
    settings=AntigravitySettings.from_env,
    executor=AntigravityExecutor,
    base_url=lambda cred, settings: text_field(cred.metadata, "base_url") or settings.bases[0],
    credential_filename=credential_filename,
    check=check,
    facts=facts,
    subscription=True,
    refresh=refresh,
    refresh_lead=REFRESH_LEAD,
    merge_tokens=merge_tokens,
    credential_json=credential_json,
    code_login=CodeLogin(
        web_name="antigravity",
        aliases=("antigravity",),
        callback=lambda settings: (settings.callback_port, settings.callback_path),
        authorize_url=lambda settings, pkce, state, redirect: authorize_url(
            settings, pkce=pkce, state=state, redirect_uri=redirect
        ),
        exchange=_exchange,
    ),
)
