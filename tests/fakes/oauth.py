"""A fake OAuth provider speaking Claude's, OpenAI's (Codex) and Google's token wire formats.

It is strict where the real ones are: PKCE verifiers must match the challenge, codes are
single-use, redirect URIs must match, refresh tokens are single-use (a second use of the same
refresh token fails, as it does upstream), Codex token requests must be form-encoded with the
right scope, and Google JWT assertions must verify against the registered public key. It counts
every token request so tests can assert "exactly one refresh".
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from cliproxy.credentials.jwt import verify_rs256
from cliproxy.credentials.login import device_login
from cliproxy.credentials.oauth import pkce_challenge
from cliproxy.credentials.providers.claude import CLIENT_ID as CLAUDE_CLIENT_ID
from cliproxy.credentials.providers.codex import CLIENT_ID as CODEX_CLIENT_ID
from cliproxy.credentials.registry import ProviderSettings

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def codex_device_login(**kwargs: Any) -> Path:
    """The device login of the provider this fake plays for Codex (`login.device_login`)."""
    return await device_login("codex", **kwargs)


def fake_id_token(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT (the proxy never verifies Codex id_tokens)."""

    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


@dataclass
class IssuedCode:
    provider: str
    client_id: str
    challenge: str
    redirect_uri: str
    state: str


@dataclass
class FakeOAuth:
    email: str = "user@example.com"
    account_id: str = "acct-1234"
    plan_type: str = "plus"
    expires_in: int = 10 * 24 * 3600  # like real Codex tokens: outside every refresh lead
    device_pending_polls: int = 2
    claude_code_carries_state: bool = True
    refresh_gate: asyncio.Event | None = None
    refresh_failure: tuple[int, str] | None = None
    base_url: str = ""
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    vertex_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    device_polls: Counter[str] = field(default_factory=Counter)
    issued: int = 0

    # ------------------------------------------------------------ wiring

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/claude/oauth/authorize", self.claude_authorize)
        r.add_post("/claude/v1/oauth/token", self.claude_token)
        r.add_get("/codex/oauth/authorize", self.codex_authorize)
        r.add_post("/codex/oauth/token", self.codex_token)
        r.add_post("/codex/api/accounts/deviceauth/usercode", self.device_usercode)
        r.add_post("/codex/api/accounts/deviceauth/token", self.device_token)
        r.add_post("/google/token", self.google_token)
        return app

    def env(self) -> dict[str, str]:
        """The environment variables that point cliproxy's flows at this fake."""
        b = self.base_url
        return {
            "CLIPROXY_CLAUDE_AUTHORIZE_URL": f"{b}/claude/oauth/authorize",
            "CLIPROXY_CLAUDE_TOKEN_URL": f"{b}/claude/v1/oauth/token",
            "CLIPROXY_CODEX_AUTHORIZE_URL": f"{b}/codex/oauth/authorize",
            "CLIPROXY_CODEX_TOKEN_URL": f"{b}/codex/oauth/token",
            "CLIPROXY_CODEX_DEVICE_USERCODE_URL": f"{b}/codex/api/accounts/deviceauth/usercode",
            "CLIPROXY_CODEX_DEVICE_TOKEN_URL": f"{b}/codex/api/accounts/deviceauth/token",
            "CLIPROXY_CODEX_DEVICE_VERIFY_URL": f"{b}/codex/device",
            "CLIPROXY_VERTEX_TOKEN_URL": f"{b}/google/token",
        }

    def settings(self) -> ProviderSettings:
        return ProviderSettings.from_env(self.env())

    def issue_refresh_token(self, provider: str) -> str:
        token = f"rt-{provider}-{secrets.token_hex(8)}"
        self.refresh_tokens[token] = provider
        return token

    # ------------------------------------------------------------ authorize

    def _authorize(self, request: web.Request, provider: str, client_id: str) -> IssuedCode:
        q = request.query
        if q.get("client_id") != client_id:
            raise web.HTTPBadRequest(text="unknown client_id")
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            raise web.HTTPBadRequest(text="response_type=code and S256 PKCE are required")
        if not q.get("code_challenge") or not q.get("state") or not q.get("redirect_uri"):
            raise web.HTTPBadRequest(text="code_challenge, state and redirect_uri are required")
        return IssuedCode(provider, client_id, q["code_challenge"], q["redirect_uri"], q["state"])

    def _redirect(self, issued: IssuedCode, code_value: str) -> web.Response:
        query = urlencode({"code": code_value, "state": issued.state})
        raise web.HTTPFound(f"{issued.redirect_uri}?{query}")

    async def claude_authorize(self, request: web.Request) -> web.Response:
        issued = self._authorize(request, "claude", CLAUDE_CLIENT_ID)
        if request.query.get("code") != "true" or "user:inference" not in request.query.get("scope", ""):
            raise web.HTTPBadRequest(text="claude needs code=true and the user:inference scope")
        code = secrets.token_hex(8)
        self.codes[code] = issued
        shown = f"{code}#{issued.state}" if self.claude_code_carries_state else code
        return self._redirect(issued, shown)

    async def codex_authorize(self, request: web.Request) -> web.Response:
        issued = self._authorize(request, "codex", CODEX_CLIENT_ID)
        if "offline_access" not in request.query.get("scope", "").split():
            raise web.HTTPBadRequest(text="codex login needs offline_access")
        code = secrets.token_hex(8)
        self.codes[code] = issued
        return self._redirect(issued, code)

    # ------------------------------------------------------------ token

    def _redeem(self, provider: str, code: str, verifier: str, redirect_uri: str, client_id: str) -> IssuedCode:
        issued = self.codes.pop(code, None)
        if issued is None or issued.provider != provider:
            raise _oauth_error(400, "invalid_grant", "unknown or used code")
        if issued.client_id != client_id:
            raise _oauth_error(400, "invalid_client", "client_id mismatch")
        if issued.redirect_uri != redirect_uri:
            raise _oauth_error(400, "invalid_grant", "redirect_uri mismatch")
        if not verifier or pkce_challenge(verifier) != issued.challenge:
            raise _oauth_error(400, "invalid_grant", "PKCE verification failed")
        return issued

    async def _refresh(self, provider: str, token: str) -> None:
        self.requests[f"{provider}:refresh"] += 1
        if self.refresh_gate is not None:
            await self.refresh_gate.wait()
        if self.refresh_failure is not None:
            status, error = self.refresh_failure
            raise _oauth_error(status, error, "refresh refused")
        if self.refresh_tokens.pop(token, None) != provider:
            raise _oauth_error(400, "invalid_grant", "refresh token unknown or already used")

    def _tokens(self, provider: str) -> dict[str, Any]:
        self.issued += 1
        return {
            "access_token": f"at-{provider}-{self.issued}-{secrets.token_hex(4)}",
            "refresh_token": self.issue_refresh_token(provider),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }

    async def claude_token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            raise _oauth_error(400, "invalid_request", "claude token requests are JSON")
        body = await request.json()
        if body.get("client_id") != CLAUDE_CLIENT_ID:
            raise _oauth_error(400, "invalid_client", "unknown client_id")
        grant = body.get("grant_type")
        if grant == "authorization_code":
            self.requests["claude:code"] += 1
            if "#" in str(body.get("code")):
                raise _oauth_error(400, "invalid_grant", "code still carries #state")
            issued = self._redeem("claude", body.get("code", ""), body.get("code_verifier", ""),
                                  body.get("redirect_uri", ""), body["client_id"])  # fmt: skip
            if body.get("state") != issued.state:
                raise _oauth_error(400, "invalid_grant", "state mismatch")
        elif grant == "refresh_token":
            await self._refresh("claude", str(body.get("refresh_token")))
        else:
            raise _oauth_error(400, "unsupported_grant_type", str(grant))
        data = self._tokens("claude")
        data["account"] = {"uuid": "acc-uuid-1", "email_address": self.email}
        data["organization"] = {"uuid": "org-uuid-1", "name": "Example Org"}
        return web.json_response(data)

    async def codex_token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            raise _oauth_error(400, "invalid_request", "codex token requests are form-encoded")
        form = await request.post()
        if form.get("client_id") != CODEX_CLIENT_ID:
            raise _oauth_error(400, "invalid_client", "unknown client_id")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            self.requests["codex:code"] += 1
            self._redeem("codex", str(form.get("code", "")), str(form.get("code_verifier", "")),
                         str(form.get("redirect_uri", "")), CODEX_CLIENT_ID)  # fmt: skip
        elif grant == "refresh_token":
            if form.get("scope") != "openid profile email":
                raise _oauth_error(400, "invalid_scope", "refresh scope must be 'openid profile email'")
            await self._refresh("codex", str(form.get("refresh_token")))
        else:
            raise _oauth_error(400, "unsupported_grant_type", str(grant))
        data = self._tokens("codex")
        data["id_token"] = fake_id_token(
            {
                "email": self.email,
                "https://api.openai.com/auth": {
                    "chatgpt_account_id": self.account_id,
                    "chatgpt_plan_type": self.plan_type,
                },
            }
        )
        return web.json_response(data)

    # ------------------------------------------------------------ device code

    async def device_usercode(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("client_id") != CODEX_CLIENT_ID:
            raise _oauth_error(400, "invalid_client", "unknown client_id")
        self.requests["codex:usercode"] += 1
        return web.json_response({"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": "0"})

    async def device_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("device_auth_id") != "dev-1" or body.get("user_code") != "ABCD-1234":
            raise _oauth_error(400, "invalid_request", "unknown device code")
        self.device_polls["dev-1"] += 1
        if self.device_polls["dev-1"] <= self.device_pending_polls:
            return web.json_response({"error": "authorization_pending"}, status=403)
        verifier = secrets.token_urlsafe(48)
        code = secrets.token_hex(8)
        self.codes[code] = IssuedCode(
            "codex", CODEX_CLIENT_ID, pkce_challenge(verifier), "https://auth.openai.com/deviceauth/callback", ""
        )
        return web.json_response(
            {"authorization_code": code, "code_challenge": pkce_challenge(verifier), "code_verifier": verifier}
        )

    # ------------------------------------------------------------ google

    async def google_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            raise _oauth_error(400, "unsupported_grant_type", str(form.get("grant_type")))
        self.requests["google:jwt"] += 1
        assertion = str(form.get("assertion", ""))
        payload = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
        key = self.vertex_keys.get(payload.get("iss", ""))
        if key is None:
            raise _oauth_error(400, "invalid_grant", "unknown service account")
        try:
            claims = verify_rs256(assertion, key)
        except Exception:
            raise _oauth_error(400, "invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("aud") != f"{self.base_url}/google/token" or "cloud-platform" not in claims.get("scope", ""):
            raise _oauth_error(400, "invalid_grant", "bad aud or scope")
        if not claims["iat"] < claims["exp"] <= claims["iat"] + 3600:
            raise _oauth_error(400, "invalid_grant", "bad lifetime")
        self.issued += 1
        return web.json_response(
            {"access_token": f"ya29.fake-{self.issued}", "expires_in": self.expires_in, "token_type": "Bearer"}
        )


def _oauth_error(status: int, error: str, description: str) -> web.HTTPException:
    body = json.dumps({"error": error, "error_description": description})
    cls: type[web.HTTPException] = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden}.get(
        status, web.HTTPInternalServerError
    )
    return cls(text=body, content_type="application/json")
