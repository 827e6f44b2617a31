"""Vertex AI through a Google service account: minted tokens, the credential file, its executor.

The service-account key signs an RS256 JWT (`cryptography`, no Google SDK) which the token URI
exchanges for a one-hour access token (grant type jwt-bearer); the running server caches it per
credential (`MintedTokens`). Requests go to the regional publisher-model URL of the file's
project and location.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.files import AuthFileCredential, CredentialFileError, filename_part, text_field
from cliproxy.credentials.jwt import load_rsa_private_key, sign_rs256
from cliproxy.credentials.kinds import AuthFileKind
from cliproxy.credentials.minted import MintedTokens
from cliproxy.credentials.oauth import OAuthError, TokenSet, overrides_from_env, post_token_request
from cliproxy.translate import Dialect
from cliproxy.upstream.base import UpstreamCredential
from cliproxy.upstream.gemini import gemini_method

log = logging.getLogger(__name__)

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
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
    """`https://{loc}-aiplatform.googleapis.com`, or the global host for `global` (as CLIProxyAPI)."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def model_url(settings: VertexSettings, cred: AuthFileCredential, model: str, action: str) -> str:
    """`…/v1/projects/{p}/locations/{loc}/publishers/google/models/{m}:{action}`."""
    return _model_base(settings, cred, model) + f":{action}"


def _model_base(settings: VertexSettings, cred: AuthFileCredential, model: str) -> str:
    loc = cred.location
    return f"{base_url(settings, loc)}/v1/projects/{cred.project_id}/locations/{loc}/publishers/google/models/{model}"


def service_account(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    value = meta.get("service_account")
    return value if isinstance(value, Mapping) else {}


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


class VertexTokenSource(MintedTokens):
    """Minted access tokens of vertex service-account credentials, cached per credential."""

    def __init__(self, session: aiohttp.ClientSession, settings: VertexSettings) -> None:
        super().__init__(functools.partial(_mint, session, settings))


def credential_json(
    service_account: Mapping[str, Any], *, location: str = "", prefix: str = "", label: str = ""
) -> dict[str, Any]:
    """The file `vertex/import` writes, with CLIProxyAPI's fields; validates the key first."""
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
    return f"vertex-{filename_part(str(data.get('project_id') or 'project'))}.json"


# --------------------------------------------------------------------------- the registry entry


async def _mint(session: aiohttp.ClientSession, settings: VertexSettings, cred: AuthFileCredential) -> TokenSet:
    return await mint_token(session, settings, service_account(cred.metadata), proxy_url=cred.proxy_url)


def check(meta: dict[str, Any]) -> None:
    """A service-account object with email and key, and a project (the key's, when the file has none)."""
    sa = meta.get("service_account")
    if not isinstance(sa, Mapping):
        raise CredentialFileError("vertex: service_account (the Google service-account JSON object) is required")
    for key in ("client_email", "private_key"):
        if not text_field(sa, key):
            raise CredentialFileError(f"vertex: service_account.{key} is required")
    if not (text_field(meta, "project_id") or text_field(sa, "project_id")):
        raise CredentialFileError("vertex: project_id is required")
    if not text_field(meta, "project_id"):
        meta["project_id"] = text_field(sa, "project_id")


def facts(meta: Mapping[str, Any]) -> dict[str, str]:
    return {
        "email": text_field(service_account(meta), "client_email"),
        "project_id": text_field(meta, "project_id"),
        "location": text_field(meta, "location") or DEFAULT_LOCATION,
    }


def import_key(key: Mapping[str, Any], options: Mapping[str, str]) -> dict[str, Any]:
    return credential_json(
        key,
        location=options.get("location", "").strip(),
        prefix=options.get("prefix", "").strip().strip("/"),
        label=options.get("label", "").strip(),
    )


class VertexServiceAccountExecutor(AuthFileExecutor[VertexSettings]):
    """Vertex AI with a service account: regional publisher-model URL, minted Bearer token."""

    kind: ClassVar[str] = "vertex"
    dialect: ClassVar[Dialect] = Dialect.GEMINI
    forward_headers: ClassVar[tuple[str, ...]] = ("User-Agent", "x-goog-api-client")

    def url(self, cred: UpstreamCredential, model: str, *, stream: bool, action: str) -> str:
        return _model_base(self.settings, self.source, model) + gemini_method(stream, action)

    def can_refresh(self, cred: UpstreamCredential) -> bool:
        return True  # a 401 is answered by minting a new token


PROVIDER: AuthFileKind[VertexSettings] = AuthFileKind(
    type="vertex",
    owner="google",
    settings=VertexSettings.from_env,
    executor=VertexServiceAccountExecutor,
    base_url=lambda cred, settings: base_url(settings, cred.location),
    credential_filename=credential_filename,
    check=check,
    facts=facts,
    account_type="service_account",
    mint=_mint,
    import_key=import_key,
)
