"""Google's Code Assist API (`v1internal`), which Antigravity logins speak: Gemini inside an envelope.

A Gemini request goes out as `{"project", "model", "userAgent", "requestType", "requestId",
"request": {...}}` to `/v1internal:generateContent` or `:streamGenerateContent?alt=sse`; each
answer (the whole body, or each SSE `data:` object) carries the Gemini response under `response`,
which is taken off here so routing sees plain Gemini. As CLIProxyAPI does, the hosts are tried in
order (the daily host first) and the next one is asked after a network error, any 429, or a 503
saying it has no capacity; any other answer is final.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from cliproxy import jsonio
from cliproxy.upstream.clients import Sessions, Timeouts, UpstreamResponse
from cliproxy.upstream.relayed import ReshapedResponse, whole_response

log = logging.getLogger(__name__)

DEFAULT_BASES = ("https://daily-cloudcode-pa.googleapis.com", "https://cloudcode-pa.googleapis.com")
USER_AGENT_FIELD = "antigravity"
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def method_path(stream: bool, action: str) -> str:
    if action == "count_tokens":
        return "/v1internal:countTokens"
    return "/v1internal:streamGenerateContent?alt=sse" if stream else "/v1internal:generateContent"


def _int63(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def session_id(request: Mapping[str, Any]) -> str:
    """A stable session id for one conversation: derived from its first user text, as CLIProxyAPI does."""
    for content in request.get("contents") or ():
        if isinstance(content, dict) and content.get("role", "user") == "user":
            for part in content.get("parts") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                    return f"-{_int63(part['text'])}"
    return f"-{uuid.uuid4().int & (2**63 - 1)}"


def wrap(request: dict[str, Any], *, project: str, model: str, action: str) -> dict[str, Any]:
    """The Code Assist envelope of a Gemini request body (`request` is changed in place)."""
    if action == "count_tokens" and isinstance(request.get("generateContentRequest"), dict):
        request = request["generateContentRequest"]  # Code Assist counts the request itself
    request.pop("safetySettings", None)
    request.pop("model", None)
    if "system_instruction" in request and "systemInstruction" not in request:
        request["systemInstruction"] = request.pop("system_instruction")
    if action == "count_tokens":
        return {"request": request}
    config = request.get("generationConfig")
    if model.startswith("claude-"):  # Claude behind Code Assist validates its tool calls
        tool_config = request.setdefault("toolConfig", {})
        if isinstance(tool_config, dict):
            tool_config.setdefault("functionCallingConfig", {})["mode"] = "VALIDATED"
    elif isinstance(config, dict):
        config.pop("maxOutputTokens", None)
    request.setdefault("sessionId", session_id(request))
    image = "image" in model
    request_id = f"image_gen/{int(time.time() * 1000)}/{uuid.uuid4()}/12" if image else f"agent-{uuid.uuid4()}"
    return {
        "project": project,
        "model": model,
        "userAgent": USER_AGENT_FIELD,
        "requestType": "image_gen" if image else "agent",
        "requestId": request_id,
        "request": request,
    }


def unwrap_object(data: bytes) -> bytes:
    """One answer object without its envelope (as it is when it has none)."""
    try:
        parsed = jsonio.loads(data)
    except ValueError:
        return data
    if isinstance(parsed, dict) and isinstance(parsed.get("response"), dict):
        return jsonio.dumps(parsed["response"])
    return data


class SseUnwrapper:
    """Takes the envelope off each `data:` line of an SSE stream, whatever the chunking."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        self._pending = data[cut:]
        return self._lines(data[:cut])

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._lines(rest)

    @staticmethod
    def _lines(block: bytes) -> bytes:
        if b"data:" not in block:
            return block
        out = []
        for line in block.splitlines(keepends=True):
            if line.startswith(b"data:"):
                body = line[5:].strip()
                ending = line[len(line.rstrip(b"\r\n")) :]
                line = b"data: " + unwrap_object(body) + ending if body and body != b"[DONE]" else line
            out.append(line)
        return b"".join(out)


def unwrapped(resp: UpstreamResponse, stream: bool) -> UpstreamResponse:
    """A successful answer with the envelope taken off as it streams."""
    if stream:
        sse = SseUnwrapper()
        return ReshapedResponse(resp, sse.feed, sse.finish)
    held: list[bytes] = []

    def hold(chunk: bytes) -> bytes:
        held.append(chunk)
        return b""

    return ReshapedResponse(resp, hold, lambda: unwrap_object(b"".join(held)))


def next_host_please(status: int, body: bytes) -> bool:
    """Whether another host may serve what this one refused: any 429, or a 503 without capacity."""
    return status == 429 or (status == 503 and b"no capacity available" in body.lower())


async def post_with_fallback(
    sessions: Sessions,
    bases: Sequence[str],
    path: str,
    *,
    payload: bytes,
    headers: Mapping[str, str],
    proxy_url: str,
    timeouts: Timeouts,
    stream: bool,
) -> UpstreamResponse:
    """POST to each host in turn until one answers with something other than "try elsewhere"."""
    for index, base in enumerate(bases):
        last = index == len(bases) - 1
        url = base.rstrip("/") + path
        try:
            resp = await sessions.poster_for(proxy_url, url).post(url, data=payload, headers=headers, timeouts=timeouts)
        except NETWORK_ERRORS as exc:
            if last:
                raise
            log.info("code assist host %s unreachable (%s); trying the next", base, type(exc).__name__)
            continue
        if resp.status < 300:
            return unwrapped(resp, stream)
        try:
            body = await resp.read()
        finally:
            resp.release()
        if not last and next_host_please(resp.status, body):
            log.info("code assist host %s answered %d; trying the next", base, resp.status)
            continue
        return whole_response(resp.status, dict(resp.headers), body)
    raise RuntimeError("no Code Assist host configured")
