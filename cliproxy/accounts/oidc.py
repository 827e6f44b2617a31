"""Single sign-on with any OpenID Connect provider: authorization code flow with PKCE and a nonce.

The provider is found from its issuer's discovery document (which must name that same issuer);
its signing keys come from its JWKS, fetched again once when a token names a key we do not have
(the provider rotated). The ID token is verified with PyJWT: signature with an asymmetric
algorithm the provider advertises (never `none` or a shared-secret HMAC), issuer, audience (our
client id; with several audiences `azp` must be ours), expiry and issue time, then the nonce of
this sign-in and a verified email. Pending sign-ins (state → nonce, PKCE verifier, where to go
after) live for `PENDING_SECONDS`, each bound to the browser that started it: in this process's
memory (`LocalPendingSignIns`), or with `shared-state.redis-url` in Redis, so the provider's
callback may land on any process of a cluster.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import jwt

from cliproxy.clientkeys import secret_digest
from cliproxy.config.model import SSO
from cliproxy.credentials.oauth import generate_pkce

PENDING_SECONDS = 600.0
CACHE_SECONDS = 3600.0
LEEWAY_SECONDS = 60
MAX_PENDING = 1000
TOO_MANY_PENDING = "too many pending sign-ins: try again in a few minutes"
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)


class SSOError(Exception):
    """A sign-in the provider or its token does not allow; the message says which check failed."""


@dataclass(frozen=True, slots=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pending:
    nonce: str
    verifier: str
    redirect_uri: str
    after: str  # a fragment of the panel to land on (`#/cli-login?...`)
    binding: str  # SHA-256 of the browser cookie that started it
    expires: float


@dataclass(frozen=True, slots=True)
class Identity:
    email: str
    subject: str


class PendingSignIns(Protocol):
    async def put(self, state: str, pending: Pending) -> None:
        """Keep `pending` under `state` until it expires; `SSOError` when no more can be kept."""
        ...

    async def take(self, state: str) -> Pending | None:
        """The pending sign-in of `state`, spent now (None: unknown, used, or expired)."""
        ...


class LocalPendingSignIns:
    """`PendingSignIns` in this process's memory."""

    def __init__(self) -> None:
        self.pending: dict[str, Pending] = {}

    async def put(self, state: str, pending: Pending) -> None:
        now = time.time()
        for stale in [s for s, p in self.pending.items() if p.expires <= now]:
            del self.pending[stale]
        if len(self.pending) >= MAX_PENDING:
            raise SSOError(TOO_MANY_PENDING)
        self.pending[state] = pending

    async def take(self, state: str) -> Pending | None:
        return self.pending.pop(state, None)


class OpenIDClient:
    """Discovery and key caches, pending sign-ins, and the three steps of a sign-in."""

    def __init__(self, pending: PendingSignIns | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._providers: dict[str, tuple[Provider, float]] = {}
        self._keys: dict[str, tuple[jwt.PyJWKSet, float]] = {}
        self.pending = pending if pending is not None else LocalPendingSignIns()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT, trust_env=True)
        return self._session

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http().get(url, headers={"Accept": "application/json"}) as resp:
                if resp.status != 200:
                    raise SSOError(f"{what}: HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SSOError(f"{what}: {exc.__class__.__name__}") from None
        if not isinstance(data, dict):
            raise SSOError(f"{what}: not a JSON object")
        return data

    async def provider(self, issuer: str) -> Provider:
        cached = self._providers.get(issuer)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        doc = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
        if doc.get("issuer") != issuer:
            raise SSOError("discovery document: its issuer is not the configured sso.issuer")
        try:
            advertised = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
            provider = Provider(
                issuer=issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                algorithms=tuple(a for a in advertised if a in ASYMMETRIC) or ("RS256",),
            )
        except KeyError as exc:
            raise SSOError(f"discovery document: no {exc.args[0]}") from None
        self._providers[issuer] = (provider, time.monotonic())
        return provider

    async def _key(self, provider: Provider, kid: str) -> jwt.PyJWK:
        for attempt in range(2):
            cached = self._keys.get(provider.jwks_uri)
            if attempt or cached is None or time.monotonic() - cached[1] >= CACHE_SECONDS:
                try:
                    keys = jwt.PyJWKSet.from_dict(await self._get_json(provider.jwks_uri, "JWKS"))
                except jwt.PyJWKSetError as exc:
                    raise SSOError(f"JWKS: {exc}") from None
                cached = (keys, time.monotonic())
                self._keys[provider.jwks_uri] = cached
            for key in cached[0].keys:
                if key.key_id == kid or (not kid and len(cached[0].keys) == 1):
                    return key
        raise SSOError("ID token: signed with a key the provider does not publish")

    async def start(self, provider: Provider, sso: SSO, redirect_uri: str, after: str, binding: str) -> tuple[str, str]:
        """(state, authorize URL) of a new sign-in; `binding` is the browser cookie that started it."""
        now = time.time()
        state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), generate_pkce()
        await self.pending.put(
            state, Pending(nonce, pkce.verifier, redirect_uri, after, secret_digest(binding), now + PENDING_SECONDS)
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": sso.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in provider.authorization_endpoint else "?"
        return state, f"{provider.authorization_endpoint}{sep}{query}"

    async def take(self, state: str, binding: str) -> Pending:
        """The pending sign-in of `state` (spent now), if this browser started it."""
        pending = await self.pending.take(state) if state else None
        if pending is None or pending.expires <= time.time():
            raise SSOError("this sign-in is unknown or expired: start again")
        if not binding or not hmac.compare_digest(pending.binding, secret_digest(binding)):
            raise SSOError("this sign-in was started in another browser")
        return pending

    async def finish(self, provider: Provider, sso: SSO, pending: Pending, code: str) -> Identity:
        """Trade the code for tokens and verify the ID token; the verified email and subject."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "client_id": sso.client_id,
            "code_verifier": pending.verifier,
        }
        if sso.client_secret:
            form["client_secret"] = sso.client_secret
        try:
            async with self._http().post(
                provider.token_endpoint, data=form, headers={"Accept": "application/json"}
            ) as r:
                data = await r.json(content_type=None) if r.status == 200 else None
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SSOError(f"token endpoint: {exc.__class__.__name__}") from None
        if not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
            raise SSOError(f"token endpoint: HTTP {status}, no ID token")
        return await self.verify(provider, sso, data["id_token"], pending.nonce)

    async def verify(self, provider: Provider, sso: SSO, token: str, nonce: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise SSOError("ID token: not a JWT") from None
        if header.get("alg") not in provider.algorithms:
            raise SSOError(f"ID token: algorithm {header.get('alg')!r} is not accepted")
        key = await self._key(provider, str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=list(provider.algorithms),
                audience=sso.client_id,
                issuer=provider.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise SSOError("ID token: expired") from None
        except jwt.InvalidAudienceError:
            raise SSOError("ID token: issued for another client") from None
        except jwt.InvalidIssuerError:
            raise SSOError("ID token: issued by another issuer") from None
        except jwt.InvalidTokenError as exc:
            raise SSOError(f"ID token: {exc}") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != sso.client_id:
            raise SSOError("ID token: issued for another client (azp)")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SSOError("ID token: the nonce is not this sign-in's")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SSOError("ID token: no email (ask the provider for the email scope)")
        if claims.get("email_verified") is not True:
            raise SSOError("ID token: the provider has not verified this email")
        email = email.strip().lower()
        domain = email.rpartition("@")[2]
        if sso.allowed_domains and domain not in sso.allowed_domains:
            raise SSOError(f"sign-in with {domain} addresses is not allowed on this proxy")
        return Identity(email, str(claims["sub"]))
