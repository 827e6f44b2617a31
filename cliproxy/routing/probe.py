"""One minimal live request with one credential: does it work right now?

`cliproxy auth test` probes every credential of a config; the management API probes one on the
panel's "test now". The probe asks the credential's first model for a few tokens in the
credential's own dialect, straight through its executor: no routing, no cooldown, no usage
record, so a test never changes what the proxy does next.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from cliproxy import jsonio
from cliproxy.credentials.executor import AuthFileExecutor
from cliproxy.credentials.service import CredentialService
from cliproxy.routing.credentials import Credential
from cliproxy.translate import Dialect
from cliproxy.upstream.clients import Sessions

PROBE_TEXT = "Reply with one word: ok"
PROBE_TIMEOUT_SECONDS = 60.0
DETAIL_CHARS = 300


def probe_body(dialect: str, model: str, *, stream: bool) -> dict[str, Any]:
    """The smallest generation request of the wire `dialect` (one short prompt, a few output tokens)."""
    user = [{"role": "user", "content": PROBE_TEXT}]
    body: dict[str, Any]
    if dialect == Dialect.GEMINI.value:
        return {
            "contents": [{"role": "user", "parts": [{"text": PROBE_TEXT}]}],
            "generationConfig": {"maxOutputTokens": 8},
        }
    if dialect == Dialect.CLAUDE.value:
        body = {"model": model, "max_tokens": 8, "messages": user}
    elif dialect == Dialect.RESPONSES.value:
        body = {"model": model, "input": user, "max_output_tokens": 16, "store": False}
    else:
        body = {"model": model, "messages": user, "max_tokens": 8}
    if stream:
        body["stream"] = True
    return body


def error_message(payload: Any) -> str:
    """The human message of any provider's (or the proxy's) error shape."""
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if isinstance(err, str):
            message = payload.get("message")
            return f"{err}: {message}" if message else err
    return str(payload)


async def probe(cred: Credential, sessions: Sessions, service: CredentialService | None) -> dict[str, Any]:
    """One live request with `cred`: `{"provider", "model", "result": ok|failed|skipped, "detail"}`."""
    row: dict[str, Any] = {"name": "", "provider": cred.provider, "model": None}
    if not cred.models:
        return {**row, "result": "skipped", "detail": "no models to ask"}
    model = cred.models[0].upstream[0]
    row["model"] = model
    executor = cred.executor
    stream = bool(executor.always_stream)
    url = executor.url(cred, model, stream=stream, action="generate")
    headers = dict(cred.headers)
    present = {k.lower() for k in headers}
    headers.update({k: v for k, v in executor.default_headers.items() if k.lower() not in present})
    start = time.monotonic()
    try:
        if executor.dynamic_auth:
            if isinstance(executor, AuthFileExecutor) and service is not None:
                executor.bind(service)
            headers = executor.combine_headers(headers, await executor.fresh_auth(cred))
        session, proxy = sessions.session_for(cred.proxy_url, url)
        payload = jsonio.dumps(probe_body(executor.dialect.value, model, stream=stream))
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
        async with session.post(url, data=payload, headers=headers, proxy=proxy, timeout=timeout) as resp:
            status, raw = resp.status, await resp.read()
    except Exception as exc:  # unreachable host, token refresh failure…: report it, test the next one
        return {**row, "result": "failed", "detail": f"{type(exc).__name__}: {exc}"[:DETAIL_CHARS]}
    elapsed = round((time.monotonic() - start) * 1000)
    if status < 300:
        return {**row, "result": "ok", "detail": f"HTTP {status} in {elapsed} ms"}
    try:
        message = error_message(jsonio.loads(raw))
    except ValueError:
        message = raw.decode(errors="replace")
    return {**row, "result": "failed", "detail": f"HTTP {status}: {message}"[:DETAIL_CHARS]}
