"""Claude (Anthropic subscription) OAuth: login, refresh, the credential file and its executor.

Token requests are JSON bodies, as Claude Code sends them. The code Claude hands back may carry
`#<state>`; the callers strip it with `oauth.parse_redirect_url` before `exchange_code`.
Requests go to the Messages API with the access token as Bearer and the OAuth beta flag; requests
from clients other than Claude Code are cloaked (`upstream/claude_cloak.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp

from cliproxy.config.model import Config
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, filename_part, format_time, now_utc, text_field
from cliproxy.credentials.kinds import AuthFileKind, CodeLogin, require_tokens
from cliproxy.credentials.oauth import PKCE, OAuthError, TokenSet, overrides_from_env, post_token_request
from cliproxy.upstream.base import RequestShaper, UpstreamCredential
from cliproxy.upstream.claude import DEFAULT_VERSION, ClaudeExecutor, messages_url
from cliproxy.upstream.claude_cloak import shaper_for_file

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPE = "org:create_api_key user:profile user:inference"
CALLBACK_PORT = 54545
CALLBACK_PATH = "/callback"
OAUTH_BETA = "oauth-2025-04-20"
REFRESH_LEAD = timedelta(hours=4)  # as CLIProxyAPI: refresh four hours before expiry

ENV_NAMES = {
    "client_id": "CLIPROXY_CLAUDE_CLIENT_ID",
    "authorize_url": "CLIPROXY_CLAUDE_AUTHORIZE_URL",
    "token_url": "CLIPROXY_CLAUDE_TOKEN_URL",
    "api_url": "CLIPROXY_CLAUDE_API_URL",
    "callback_port": "CLIPROXY_CLAUDE_CALLBACK_PORT",
}


@dataclass(frozen=True)
class ClaudeSettings:
    """Endpoints of the Claude flows; `ENV_NAMES` maps each field to its override variable."""

    client_id: str = CLIENT_ID
    authorize_url: str = "https://claude.ai/oauth/authorize"
    token_url: str = "https://platform.claude.com/v1/oauth/token"
    api_url: str = "https://api.anthropic.com"
    scope: str = SCOPE
    callback_port: int = CALLBACK_PORT
    callback_path: str = CALLBACK_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClaudeSettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))


def authorize_url(settings: ClaudeSettings, *, pkce: PKCE, state: str, redirect_uri: str) -> str:
    params = {
        "code": "true",
        "client_id": settings.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": settings.scope,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "state": state,
    }
    return f"{settings.authorize_url}?{urlencode(params)}"


async def exchange_code(
    session: aiohttp.ClientSession,
    settings: ClaudeSettings,
    *,
    code: str,
    state: str,
    verifier: str,
    redirect_uri: str,
    proxy_url: str = "",
) -> TokenSet:
    code = code.partition("#")[0]
    data = await post_token_request(
        session,
        settings.token_url,
        json_body={
            "grant_type": "authorization_code",
            "code": code,
            "state": state,
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        step="Failed to exchange authorization code for tokens",
        proxy_url=proxy_url,
    )
    return TokenSet.from_json(data)


async def refresh(
    session: aiohttp.ClientSession, settings: ClaudeSettings, *, refresh_token: str, proxy_url: str = ""
) -> TokenSet:
    if not refresh_token:
        raise OAuthError("claude: the credential has no refresh_token; log in again")
    data = await post_token_request(
        session,
        settings.token_url,
        json_body={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": settings.client_id},
        step="claude token refresh",
        proxy_url=proxy_url,
    )
    return TokenSet.from_json(data)


def credential_json(tokens: TokenSet) -> dict[str, Any]:
    """The file a login writes, with the fields CLIProxyAPI writes."""
    raw = tokens.raw
    account = raw.get("account") if isinstance(raw.get("account"), Mapping) else {}
    organization = raw.get("organization") if isinstance(raw.get("organization"), Mapping) else {}
    assert isinstance(account, Mapping) and isinstance(organization, Mapping)
    email = str(account.get("email_address") or account.get("email") or raw.get("email") or "")
    data: dict[str, Any] = {
        "type": "claude",
        "email": email,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "expired": format_time(tokens.expires_at) if tokens.expires_at else "",
        "last_refresh": format_time(tokens.received_at),
    }
    if account.get("uuid"):
        data["account_uuid"] = str(account["uuid"])
    if organization.get("uuid"):
        data["organization_uuid"] = str(organization["uuid"])
    if organization.get("name"):
        data["organization_name"] = str(organization["name"])
    data["disabled"] = False
    return data


def credential_filename(data: Mapping[str, Any]) -> str:
    email = str(data.get("email") or "")
    fallback = str(data.get("account_uuid") or "") or now_utc().strftime("%Y%m%d%H%M%S")
    return f"claude-{filename_part(email or fallback)}.json"


async def _exchange(
    session: aiohttp.ClientSession, settings: ClaudeSettings, code: str, state: str, verifier: str, redirect_uri: str
) -> TokenSet:
    return await exchange_code(session, settings, code=code, state=state, verifier=verifier, redirect_uri=redirect_uri)


async def _refresh(
    session: aiohttp.ClientSession, settings: ClaudeSettings, meta: Mapping[str, Any], proxy_url: str
) -> TokenSet:
    return await refresh(session, settings, refresh_token=text_field(meta, "refresh_token"), proxy_url=proxy_url)


class ClaudeOAuthExecutor(AuthFileExecutor[ClaudeSettings], ClaudeExecutor):
    """Anthropic Messages with a Claude subscription: Bearer token plus the OAuth beta flag."""

    kind: ClassVar[str] = "claude"
    # Claude Code's own headers pass unchanged (its requests are not cloaked), in its spelling.
    forward_headers: ClassVar[tuple[str, ...]] = (
        "Accept",
        "anthropic-version",
        "anthropic-beta",
        "User-Agent",
        "x-app",
        "anthropic-dangerous-direct-browser-access",
        "X-Claude-Code-Session-Id",
        "X-Claude-Code-Agent-Id",
        "X-Claude-Code-Parent-Agent-Id",
        "X-Client-Request-Id",
        "X-Stainless-Arch",
        "X-Stainless-Lang",
        "X-Stainless-OS",
        "X-Stainless-Package-Version",
        "X-Stainless-Retry-Count",
        "X-Stainless-Runtime",
        "X-Stainless-Runtime-Version",
        "X-Stainless-Timeout",
    )

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return messages_url(self.settings.api_url, action)

    def auth_headers(self, cred: UpstreamCredential) -> dict[str, str]:
        return {"anthropic-version": DEFAULT_VERSION, "anthropic-beta": OAUTH_BETA}

    def combine_headers(self, headers: Mapping[str, str], auth: Mapping[str, str]) -> dict[str, str]:
        """Keep the client's `anthropic-beta` flags and add the OAuth one (the API needs both)."""
        out = {**headers, **auth}
        flags = [f.strip() for f in out.get("anthropic-beta", "").split(",") if f.strip()]
        if OAUTH_BETA not in flags:
            flags.append(OAUTH_BETA)
        out["anthropic-beta"] = ",".join(flags)
        return out


def _shaper(cred: AuthFileCredential, config: Config) -> RequestShaper | None:
    return shaper_for_file(cred.metadata, cred.id, config)


PROVIDER: AuthFileKind[ClaudeSettings] = AuthFileKind(
    type="claude",
    owner="anthropic",
    settings=ClaudeSettings.from_env,
    executor=ClaudeOAuthExecutor,
    base_url=lambda _cred, settings: settings.api_url,
    credential_filename=credential_filename,
    check=require_tokens,
    subscription=True,
    refresh=_refresh,
    refresh_lead=REFRESH_LEAD,
    shaper=_shaper,  # cloaking: requests from other clients are made to look like Claude Code's
    credential_json=credential_json,
    code_login=CodeLogin(
        web_name="anthropic",
        aliases=("anthropic", "claude"),
        callback=lambda settings: (settings.callback_port, settings.callback_path),
        authorize_url=lambda settings, pkce, state, redirect: authorize_url(
            settings, pkce=pkce, state=state, redirect_uri=redirect
        ),
        exchange=_exchange,
    ),
)
