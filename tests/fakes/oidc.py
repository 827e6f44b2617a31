"""A fake OpenID Connect provider: discovery document, JWKS, an authorize endpoint that signs the
user in at once, and a token endpoint that issues an RS256-signed ID token.

It is strict where real providers are: the client id and secret must match, codes are single
use, the redirect URI must be the one of the authorization request, and the PKCE verifier must
match the challenge. `claims` overrides claims of the next ID tokens (a wrong issuer, audience,
nonce or an expired token), and `other_key` signs them with a key the JWKS does not publish.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from cliproxy.credentials.jwt import b64url_encode, sign_rs256
from cliproxy.credentials.oauth import pkce_challenge

CLIENT_ID = "cliproxy-test-client"
CLIENT_SECRET = "fake-oidc-client-secret"


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": encode(numbers.n), "e": encode(numbers.e)}


@dataclass
class FakeOIDC:
    email: str = "sso.user@example.com"
    email_verified: bool = True
    subject: str = "subject-0001"
    base_url: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    other_key: bool = False
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.base_url,
                "authorization_endpoint": self.base_url + "/authorize",
                "token_endpoint": self.base_url + "/token",
                "jwks_uri": self.base_url + "/jwks",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [_jwk(self.key, "key-1")]})

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return web.Response(status=400, text="bad authorization request")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "redirect_uri": query["redirect_uri"],
            "challenge": query["code_challenge"],
            "nonce": query.get("nonce", ""),
        }
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(target)

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        issued = self.codes.pop(str(form.get("code", "")), None)
        if (
            issued is None
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != issued["redirect_uri"]
            or pkce_challenge(str(form.get("code_verifier", ""))) != issued["challenge"]
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base_url,
            "aud": CLIENT_ID,
            "sub": self.subject,
            "email": self.email,
            "email_verified": self.email_verified,
            "nonce": issued["nonce"],
            "iat": now,
            "exp": now + 300,
            **self.claims,
        }
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if self.other_key else self.key
        return web.json_response(
            {"access_token": "fake-access", "token_type": "Bearer", "id_token": sign_rs256(claims, key, key_id="key-1")}
        )
