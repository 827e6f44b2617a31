"""Vertex AI through a Google service account: mint access tokens, build the credential file.

The service-account key signs an RS256 JWT (`cryptography`, no Google SDK) which the token URI
exchanges for a one-hour access token (grant type jwt-bearer). `VertexTokenSource` caches one
token per credential until shortly before it expires, with one mint in flight per credential.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from cliproxy.credentials.jwt import load_rsa_private_key, sign_rs256
from cliproxy.credentials.oauth import OAuthError, TokenSet, overrides_from_env, post_token_request
from cliproxy.credentials.store import AuthFileCredential

log = logging.getLogger(__name__)

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
REFRESH_MARGIN_SECONDS = 300
DEFAULT_LOCATION = "us-central1"

ENV_NAMES = {
    "token_url": "CLIPROXY_VERTEX_TOKEN_URL",
    "api_url": "CLIPROXY_VERTEX_API_URL",
}


@dataclass(frozen=True)
class VertexSettings:
    """`token_url` overrides the key's `token_uri`; `api_url` replaces the regional host."""

    token_url: str = ""
    api_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VertexSettings:
        return dataclasses.replace(cls(), **overrides_from_env(env, ENV_NAMES))


def base_url(settings: VertexSettings, location: str) -> str:
    """`https://{loc}-aiplatform.googleapis.com`, or the global host for `global` (spec §5.1)."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def model_url(settings: VertexSettings, cred: AuthFileCredential, model: str, action: str) -> str:
    """`…/v1/projects/{p}/locations/{loc}/publishers/google/models/{m}:{action}`."""
    loc = cred.location
    return (
        f"{base_url(settings, loc)}/v1/projects/{cred.project_id}/locations/{loc}"
        f"/publishers/google/models/{model}:{action}"
    )


def build_assertion(service_account: Mapping[str, Any], *, token_url: str, now: float | None = None) -> str:
    """The signed JWT a service account presents to Google's token endpoint."""
    issued = int(time.time() if now is None else now)
    key = load_rsa_private_key(str(service_account.get("private_key") or ""))
    claims = {
        "iss": service_account["client_email"],
        "scope": SCOPE,
        "aud": token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    return sign_rs256(claims, key, key_id=str(service_account.get("private_key_id") or ""))


def token_url_for(settings: VertexSettings, service_account: Mapping[str, Any]) -> str:
    return settings.token_url or str(service_account.get("token_uri") or "") or GOOGLE_TOKEN_URL


async def mint_token(
    session: aiohttp.ClientSession,
    settings: VertexSettings,
    service_account: Mapping[str, Any],
    *,
    proxy_url: str = "",
) -> TokenSet:
    url = token_url_for(settings, service_account)
    try:
        assertion = await asyncio.to_thread(build_assertion, service_account, token_url=url)
    except (ValueError, TypeError, KeyError) as exc:
        raise OAuthError(f"vertex: cannot sign with the service-account key: {exc}") from None
    data = await post_token_request(
        session,
        url,
        form={"grant_type": JWT_BEARER, "assertion": assertion},
        step="vertex service-account token exchange",
        proxy_url=proxy_url,
    )
    return TokenSet.from_json(data)


@dataclass(frozen=True)
class _Cached:
    token: str
    expires_at: float
    fingerprint: str


class VertexTokenSource:
    """Access tokens per vertex credential, cached until `REFRESH_MARGIN_SECONDS` before expiry."""

    def __init__(self, session: aiohttp.ClientSession, settings: VertexSettings) -> None:
        self._session = session
        self._settings = settings
        self._cache: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Task[_Cached]] = {}
        self.mint_count = 0

    @staticmethod
    def _fingerprint(cred: AuthFileCredential) -> str:
        sa = cred.service_account
        return f"{sa.get('client_email')}:{sa.get('private_key_id')}:{cred.sha256}"

    async def token(self, cred: AuthFileCredential) -> str:
        fingerprint = self._fingerprint(cred)
        cached = self._cache.get(cred.id)
        if cached and cached.fingerprint == fingerprint and cached.expires_at - REFRESH_MARGIN_SECONDS > time.time():
            return cached.token
        task = self._inflight.get(cred.id)
        if task is None:
            task = asyncio.create_task(self._mint(cred, fingerprint))
            self._inflight[cred.id] = task
            task.add_done_callback(functools.partial(self._forget, cred.id))
        return (await asyncio.shield(task)).token

    def _forget(self, key: str, task: asyncio.Task[_Cached]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting caller gets it too

    def invalidate(self, cred: AuthFileCredential) -> None:
        """Drop a cached token (the upstream answered 401 with it)."""
        self._cache.pop(cred.id, None)

    async def _mint(self, cred: AuthFileCredential, fingerprint: str) -> _Cached:
        self.mint_count += 1
        tokens = await mint_token(self._session, self._settings, cred.service_account, proxy_url=cred.proxy_url)
        lifetime = tokens.expires_in if tokens.expires_in is not None else ASSERTION_LIFETIME
        cached = _Cached(tokens.access_token, time.time() + lifetime, fingerprint)
        self._cache[cred.id] = cached
        log.info("vertex: minted an access token for %s (valid %d s)", cred.label, lifetime)
        return cached


def credential_json(
    service_account: Mapping[str, Any], *, location: str = "", prefix: str = "", label: str = ""
) -> dict[str, Any]:
    """The file `vertex/import` writes (spec §7.2, `vertex` row); validates the key first."""
    if service_account.get("type") not in (None, "service_account"):
        raise OAuthError("not a service-account key (type must be service_account)")
    email = str(service_account.get("client_email") or "")
    project = str(service_account.get("project_id") or "")
    if not email or not project or not service_account.get("private_key"):
        raise OAuthError("service-account key needs client_email, project_id and private_key")
    try:
        load_rsa_private_key(str(service_account["private_key"]))
    except (ValueError, TypeError) as exc:
        raise OAuthError(f"service-account private_key is not usable: {exc}") from None
    data: dict[str, Any] = {
        "type": "vertex",
        "service_account": dict(service_account),
        "project_id": project,
        "email": email,
        "location": location or DEFAULT_LOCATION,
        "label": label or email,
    }
    if prefix:
        data["prefix"] = prefix
    return data


def credential_filename(data: Mapping[str, Any]) -> str:
    from cliproxy.credentials.login import filename_part

    return f"vertex-{filename_part(str(data.get('project_id') or 'project'))}.json"
