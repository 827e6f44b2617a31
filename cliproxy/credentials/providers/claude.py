"""Claude (Anthropic subscription) OAuth: authorize URL, code exchange, refresh, the credential file.

Token requests are JSON bodies (spec §7.3). The code Claude hands back may carry `#<state>`; the
callers strip it with `oauth.parse_redirect_url` before `exchange_code`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from cliproxy.credentials.oauth import PKCE, OAuthError, TokenSet, overrides_from_env, post_token_request
from cliproxy.credentials.store import format_time, now_utc

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPE = "org:create_api_key user:profile user:inference"
CALLBACK_PORT = 54545
CALLBACK_PATH = "/callback"

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
    """The file a login writes (spec §7.2, `claude` row)."""
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
    from cliproxy.credentials.login import filename_part

    email = str(data.get("email") or "")
    fallback = str(data.get("account_uuid") or "") or now_utc().strftime("%Y%m%d%H%M%S")
    return f"claude-{filename_part(email or fallback)}.json"
