"""A fake of the device-code logins of xAI (OIDC discovery, RFC 8628) and Kimi (`auth.kimi.com`).

Strict where the real ones are: token requests are form-encoded with the provider's public
client id, device codes are polled with the device grant and answer `authorization_pending`
until the user "approves" (after `pending_polls` polls), `slow_down` can be asked for, refresh
tokens are single-use, and Kimi's calls must carry the `X-Msh-*` device headers (the refresh
with the device id the login saved). Every token request is counted.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cliproxy.credentials.providers.kimi import CLIENT_ID as KIMI_CLIENT_ID
from cliproxy.credentials.providers.xai import CLIENT_ID as XAI_CLIENT_ID
from cliproxy.credentials.providers.xai import SCOPE as XAI_SCOPE

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
KIMI_HEADERS = ("X-Msh-Platform", "X-Msh-Version", "X-Msh-Device-Name", "X-Msh-Device-Model", "X-Msh-Device-Id")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2ln"


def _error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error, "error_description": error}, status=status)


@dataclass
class FakeDeviceOAuth:
    base_url: str = ""
    email: str = "grok@example.com"
    pending_polls: int = 1
    slow_downs: int = 0  # answer `slow_down` this many times first
    deny: bool = False
    expires_in: int = 3600
    polls: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> provider
    kimi_device_ids: list[str] = field(default_factory=list)  # the X-Msh-Device-Id of every Kimi call
    issued: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/xai/.well-known/openid-configuration", self.xai_discovery)
        r.add_post("/xai/oauth2/device/code", self.xai_device)
        r.add_post("/xai/oauth2/token", self.xai_token)
        r.add_post("/kimi/api/oauth/device_authorization", self.kimi_device)
        r.add_post("/kimi/api/oauth/token", self.kimi_token)
        return app

    def env(self) -> dict[str, str]:
        return {
            "CLIPROXY_XAI_ISSUER_URL": f"{self.base_url}/xai",
            "CLIPROXY_XAI_DEVICE_POLL_SECONDS": "0.01",
            "CLIPROXY_KIMI_AUTH_URL": f"{self.base_url}/kimi",
            "CLIPROXY_KIMI_DEVICE_POLL_SECONDS": "0.01",
        }

    def issue_refresh_token(self, provider: str) -> str:
        token = f"rt-{provider}-{secrets.token_hex(6)}"
        self.refresh_tokens[token] = provider
        return token

    def _tokens(self, provider: str) -> dict[str, Any]:
        self.issued += 1
        return {
            "access_token": f"at-{provider}-{self.issued}",
            "refresh_token": self.issue_refresh_token(provider),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }

    def _poll(self, code: str) -> web.Response | None:
        """The answer while the user has not approved yet (None once approved)."""
        self.polls[code] += 1
        if self.deny:
            return _error(400, "access_denied")
        if self.polls[code] <= self.slow_downs:
            return _error(400, "slow_down")
        if self.polls[code] <= self.slow_downs + self.pending_polls:
            return _error(400, "authorization_pending")
        return None

    # ------------------------------------------------------------ xAI

    async def xai_discovery(self, request: web.Request) -> web.Response:
        self.requests["xai:discovery"] += 1
        return web.json_response(
            {
                "issuer": f"{self.base_url}/xai",
                "device_authorization_endpoint": f"{self.base_url}/xai/oauth2/device/code",
                "token_endpoint": f"{self.base_url}/xai/oauth2/token",
            }
        )

    async def xai_device(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request")
        form = await request.post()
        if form.get("client_id") != XAI_CLIENT_ID or form.get("scope") != XAI_SCOPE:
            return _error(400, "invalid_client")
        self.requests["xai:device"] += 1
        return web.json_response(
            {
                "device_code": "xai-device-1",
                "user_code": "GROK-1234",
                "verification_uri": "https://accounts.x.ai/device",
                "verification_uri_complete": "https://accounts.x.ai/device?user_code=GROK-1234",
                "expires_in": 900,
                "interval": 0,
            }
        )

    async def xai_token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request")
        form = await request.post()
        if form.get("client_id") != XAI_CLIENT_ID:
            return _error(401, "invalid_client")
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            if form.get("device_code") != "xai-device-1":
                return _error(400, "invalid_grant")
            self.requests["xai:poll"] += 1
            waiting = self._poll("xai-device-1")
            if waiting is not None:
                return waiting
        elif grant == "refresh_token":
            self.requests["xai:refresh"] += 1
            if self.refresh_tokens.pop(str(form.get("refresh_token")), None) != "xai":
                return _error(400, "invalid_grant")
        else:
            return _error(400, "unsupported_grant_type")
        data = self._tokens("xai")
        data["id_token"] = unsigned_jwt({"email": self.email, "sub": "user-sub-42"})
        return web.json_response(data)

    # ------------------------------------------------------------ Kimi

    def _kimi_headers(self, request: web.Request) -> web.Response | None:
        missing = [h for h in KIMI_HEADERS if not request.headers.get(h)]
        if missing or request.headers.get("X-Msh-Platform") != "CLIProxyAPI":
            return _error(400, "missing device headers: " + ",".join(missing))
        self.kimi_device_ids.append(request.headers["X-Msh-Device-Id"])
        return None

    async def kimi_device(self, request: web.Request) -> web.Response:
        refused = self._kimi_headers(request)
        if refused is not None:
            return refused
        form = await request.post()
        if form.get("client_id") != KIMI_CLIENT_ID:
            return _error(400, "invalid_client")
        self.requests["kimi:device"] += 1
        return web.json_response(
            {
                "device_code": "kimi-device-1",
                "user_code": "KIMI-5678",
                "verification_uri": "https://www.kimi.com/code/authorize_device",
                "verification_uri_complete": "https://www.kimi.com/code/authorize_device?user_code=KIMI-5678",
                "expires_in": 900,
                "interval": 0,
            }
        )

    async def kimi_token(self, request: web.Request) -> web.Response:
        refused = self._kimi_headers(request)
        if refused is not None:
            return refused
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request")
        form = await request.post()
        if form.get("client_id") != KIMI_CLIENT_ID:
            return _error(400, "invalid_client")
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            if form.get("device_code") != "kimi-device-1":
                return _error(400, "invalid_grant")
            self.requests["kimi:poll"] += 1
            waiting = self._poll("kimi-device-1")
            if waiting is not None:
                return waiting
        elif grant == "refresh_token":
            self.requests["kimi:refresh"] += 1
            if self.refresh_tokens.pop(str(form.get("refresh_token")), None) != "kimi":
                return _error(401, "invalid_grant")
        else:
            return _error(400, "unsupported_grant_type")
        data = self._tokens("kimi")
        data["expires_in"] = float(self.expires_in)  # Kimi sends a float
        data["scope"] = "kimi-code"
        return web.json_response(data)
