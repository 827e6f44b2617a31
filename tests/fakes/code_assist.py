"""A fake of what an Antigravity login talks to: Google's OAuth (with PKCE), userinfo, and Code Assist.

Google's side is strict where the real one is: the authorize request needs the public client id,
offline access, consent, S256 PKCE and the Antigravity scopes; the code exchange needs the client
secret and the verifier that hashes to the challenge; codes and refresh tokens are single-use.
Code Assist runs on two hosts (`/daily` and `/prod`, the order cliproxy tries them): it finds or
onboards the project, and serves `v1internal:generateContent`, `:streamGenerateContent?alt=sse`
and `:countTokens` only for an envelope with the right project, model, `userAgent`,
`requestType`, `requestId` and a Gemini request the real API accepts; every answer wraps the
Gemini response in `response`. `refuse` queues error answers per host.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from cliproxy.credentials.oauth import pkce_challenge
from cliproxy.credentials.providers.antigravity import CLIENT_ID
from tests.fakes.upstreams import GEMINI_RESPONSE, GEMINI_TOOL_STREAM, events_of, wire_body
from tests.fakes.wire_rules import gemini_problem

CLIENT_SECRET = "fake-antigravity-secret"
PROJECT = "helical-fake-123"


@dataclass
class Envelope:
    host: str
    method: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeCodeAssist:
    base_url: str = ""
    email: str = "agy@example.com"
    project: str = PROJECT
    onboard: bool = False  # loadCodeAssist knows no project: onboardUser must be called
    tool_loop: bool = True
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (challenge, redirect_uri)
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)
    envelopes: list[Envelope] = field(default_factory=list)
    refusals: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    issued: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/o/oauth2/v2/auth", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/userinfo", self.userinfo)
        app.router.add_post("/{host}/{method}", self.code_assist)
        return app

    def env(self) -> dict[str, str]:
        b = self.base_url
        return {
            "CLIPROXY_ANTIGRAVITY_CLIENT_SECRET": CLIENT_SECRET,
            "CLIPROXY_ANTIGRAVITY_AUTHORIZE_URL": f"{b}/o/oauth2/v2/auth",
            "CLIPROXY_ANTIGRAVITY_TOKEN_URL": f"{b}/token",
            "CLIPROXY_ANTIGRAVITY_USERINFO_URL": f"{b}/userinfo",
            "CLIPROXY_ANTIGRAVITY_API_URL": f"{b}/daily,{b}/prod",
        }

    def refuse(self, host: str, status: int, error: dict[str, Any], times: int = 1) -> None:
        self.refusals.setdefault(host, []).extend([(status, error)] * times)

    def issue_refresh_token(self) -> str:
        token = f"1//rt-{secrets.token_hex(6)}"
        self.refresh_tokens.add(token)
        return token

    def issue_access_token(self) -> str:
        self.issued += 1
        token = f"ya29.agy-{self.issued}"
        self.access_tokens.add(token)
        return token

    # ------------------------------------------------------------ Google OAuth

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        scopes = q.get("scope", "").split()
        wanted = ("cloud-platform", "userinfo.email", "cclog", "experimentsandconfigs")
        if (
            q.get("client_id") != CLIENT_ID
            or q.get("access_type") != "offline"
            or q.get("prompt") != "consent"
            or q.get("response_type") != "code"
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or not all(f"https://www.googleapis.com/auth/{s}" in scopes for s in wanted)
        ):
            raise web.HTTPBadRequest(text="invalid authorize request")
        code = f"4/{secrets.token_hex(6)}"
        self.codes[code] = (q["code_challenge"], q["redirect_uri"])
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        data: dict[str, Any] = {"expires_in": 3599, "token_type": "Bearer", "scope": "openid"}
        if grant == "authorization_code":
            issued = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier") or "")
            if issued is None or issued[1] != form.get("redirect_uri") or pkce_challenge(verifier) != issued[0]:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.requests["code"] += 1
            data["refresh_token"] = self.issue_refresh_token()
        elif grant == "refresh_token":
            self.requests["refresh"] += 1
            token = str(form.get("refresh_token"))
            if token not in self.refresh_tokens:
                return web.json_response({"error": "invalid_grant"}, status=400)
            # Google keeps the refresh token: no new one in the answer
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        data["access_token"] = self.issue_access_token()
        return web.json_response(data)

    def _bearer(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.access_tokens

    async def userinfo(self, request: web.Request) -> web.Response:
        if not self._bearer(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"email": self.email, "verified_email": True})

    # ------------------------------------------------------------ Code Assist

    async def code_assist(self, request: web.Request) -> web.StreamResponse:
        host, method = request.match_info["host"], request.match_info["method"]
        if not self._bearer(request):
            error = {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                               "status": "UNAUTHENTICATED"}}  # fmt: skip
            return web.json_response(error, status=401)
        body = await request.json()
        self.requests[f"{host}:{method}"] += 1
        if method == "v1internal:loadCodeAssist":
            if body != {"metadata": {"ideType": "ANTIGRAVITY"}}:
                return web.json_response({"error": {"code": 400, "message": "bad metadata"}}, status=400)
            if self.onboard:
                return web.json_response({"allowedTiers": [{"id": "free-tier", "isDefault": True}]})
            return web.json_response({"cloudaicompanionProject": self.project, "currentTier": {"id": "free-tier"}})
        if method == "v1internal:onboardUser":
            assert body["tier_id"] == "free-tier" and body["metadata"]["ide_type"] == "ANTIGRAVITY"
            return web.json_response({"done": True, "response": {"cloudaicompanionProject": {"id": self.project}}})
        self.envelopes.append(Envelope(host, method, body, dict(request.headers)))
        queued = self.refusals.get(host)
        if queued:
            status, error = queued.pop(0)
            return web.json_response(error, status=status)
        problem = self._problem(method, body)
        if problem is not None:
            self.problems.append(problem)
            error = {"error": {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}}
            return web.json_response(error, status=400)
        inner = body["request"]
        if method == "v1internal:countTokens":
            return web.json_response({"totalTokens": 7})
        tools = bool(inner.get("tools")) and not _ends_with_result(inner)
        if method == "v1internal:generateContent":
            answer = json.loads(wire_body("gemini_generate_tool.txt")) if tools else dict(GEMINI_RESPONSE)
            return web.json_response({"response": answer, "traceId": "trace-1"})
        if method == "v1internal:streamGenerateContent" and request.query.get("alt") == "sse":
            source = GEMINI_TOOL_STREAM if tools else wire_body("gemini_stream.txt")
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event in events_of(source):
                data = event.strip()[len(b"data:") :].strip()
                wrapped = json.dumps({"response": json.loads(data), "traceId": "trace-1"}).encode()
                await response.write(b"data: " + wrapped + b"\r\n\r\n")
            await response.write_eof()
            return response
        return web.json_response({"error": {"code": 404, "message": f"unknown method {method}"}}, status=404)

    def _problem(self, method: str, body: dict[str, Any]) -> str | None:
        inner = body.get("request")
        if not isinstance(inner, dict):
            return "request is required"
        if method == "v1internal:countTokens":
            return None if inner.get("contents") and "project" not in body else "bad countTokens envelope"
        if body.get("project") != self.project:
            return f"project {body.get('project')!r} is not the account's"
        if not body.get("model") or body.get("userAgent") != "antigravity":
            return "model and userAgent are required"
        if body.get("requestType") not in ("agent", "image_gen") or not str(body.get("requestId", "")):
            return "requestType and requestId are required"
        if "safetySettings" in inner or not str(inner.get("sessionId", "")).startswith("-"):
            return "safetySettings are not accepted here; a sessionId is required"
        return gemini_problem(inner)


def _ends_with_result(request: dict[str, Any]) -> bool:
    contents = request.get("contents") or []
    parts = contents[-1].get("parts") if contents else None
    return isinstance(parts, list) and any("functionResponse" in p for p in parts)
