"""Classifying upstream failures: request fault or not, retry hints, the message to show.

As in CLIProxyAPI, a request fault (the client's own mistake: 400, 409, 413, 422, or an error type
such as `invalid_request_error` or `context_length_exceeded`) goes straight back to the client with
no retry and no cooldown; 401, 402 and 429 never are. Anything else moves on to the next credential.
For 429s the upstream's retry hint (`Retry-After`, Anthropic's unified reset header, Google's
`RetryInfo` / `quotaResetDelay`, Codex's `resets_*`) sets the cooldown (`health.py` decides). A 429
that says a free allowance is used up for its rolling window (xAI's `free-usage-exhausted`) is
classified as such (`Failure.kind`), so health can keep the pair out for the whole window.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from cliproxy import jsonio
from cliproxy.clientkeys import redact
from cliproxy.translate import Dialect
from cliproxy.translate.chat.errors import known_status
from cliproxy.translate.claude.errors import status_of_type
from cliproxy.upstream.http1 import UpstreamDisconnected, UpstreamProtocolError

OWN_ERRORS = (UpstreamProtocolError, UpstreamDisconnected)

FAULT_STATUSES = frozenset({400, 409, 413, 422})
RETRY_ROUND_STATUSES = frozenset({403, 408, 429, 500, 502, 503, 504})
# What a stream's `streaming.bootstrap-retries` re-run: also auth and payment failures.
BOOTSTRAP_STATUSES = frozenset({401, 402, 403, 408, 429, *range(500, 600)})
FAULT_TYPES = frozenset(
    {
        "invalid_request_error",
        "invalid_request",
        "bad_request_error",
        "invalid_prompt",
        "context_length_exceeded",
        "message_too_big",
        "string_above_max_length",
        "invalid_value",
        "unsupported_value",
        "cyber_policy",
        "previous_response_not_found",
    }
)
_NOT_PERSISTED = re.compile(r"item with id .* not found.*store.* false", re.I | re.S)
_MODEL_UNSUPPORTED = re.compile(
    r"model[^.]{0,80}(not found|not supported|unsupported|does not exist|is not available)", re.I
)
_AFTER_SECONDS = re.compile(r"after\s+((?:\d+(?:\.\d+)?[hms])+|\d+(?:\.\d+)?)\b", re.I)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
FREE_USAGE_EXHAUSTED = "free_usage_exhausted"
_FREE_USAGE_MARKERS = ("free-usage-exhausted", "included free usage")


@dataclass(slots=True)
class Failure:
    """One failed attempt, kept so the last one can be shown to the client."""

    status: int
    body: bytes
    dialect: Dialect  # the upstream's dialect (decides whether the body passes through as-is)
    retry_after: float | None = None
    fault: bool = False
    not_found: bool = False
    message: str = ""
    err_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = ""  # a finer classification health acts on (`FREE_USAGE_EXHAUSTED`)


def network_failure(dialect: Dialect, what: str, exc: BaseException) -> Failure:
    """A failure of the connection itself: 504 when a bound of `upstream-timeouts` ran out, else 502.

    The upstream clients' own exceptions say what went wrong in words of ours (never a URL or a
    header), so their text is shown; other exceptions are named by class only."""
    if isinstance(exc, TimeoutError):
        return Failure(504, b"", dialect, message=f"{what}: timed out ({exc})" if str(exc) else f"{what}: timed out")
    detail = f": {exc}" if isinstance(exc, OWN_ERRORS) and str(exc) else ""
    return Failure(502, b"", dialect, message=f"{what}: {type(exc).__name__}{detail}")


def masked(failure: Failure, secrets: tuple[str, ...]) -> Failure:
    """The failure with every credential value the upstream echoed back (in its body, its message or
    a header passed on) shown as `sk-…abcd`, as the logs show them."""
    if not secrets:
        return failure
    body, message, headers = failure.body, failure.message, failure.headers
    for secret in secrets:
        shown = redact(secret)
        if secret.encode() in body:
            body = body.replace(secret.encode(), shown.encode())
        message = message.replace(secret, shown)
        headers = {name: value.replace(secret, shown) for name, value in headers.items()}
    failure.body, failure.message, failure.headers = body, message, headers
    return failure


def sane_seconds(value: float | None) -> float | None:
    """A retry hint worth believing: finite and not negative (`inf`, `nan` and `-5` mean no hint)."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def parse_duration(text: str) -> float | None:
    """`"30s"`, `"1.5s"`, `"1h2m3s"`, `"250ms"` → seconds (None when it is not a sane duration)."""
    text = text.strip()
    try:
        return sane_seconds(float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sane_seconds(sum(float(n) * scale[u] for n, u in parts))


def retry_after_header(value: str | None) -> float | None:
    """`Retry-After` as seconds or an HTTP date (a date in the past means now)."""
    if not value:
        return None
    value = value.strip()
    try:
        return sane_seconds(float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _error_obj(parsed: Any) -> dict[str, Any]:
    if isinstance(parsed, list) and parsed:  # Gemini sometimes wraps errors in a list
        parsed = parsed[0]
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict):
            return err
        if isinstance(parsed.get("type"), str) and parsed.get("type") != "error":
            return parsed
    return {}


def body_hint(parsed: Any, message: str) -> float | None:
    """Retry hints inside a 429 body: Google RetryInfo / quotaResetDelay / "after Ns"; Codex resets."""
    err = _error_obj(parsed)
    details = err.get("details")
    if isinstance(details, list):
        for item in details:
            if not isinstance(item, dict):
                continue
            kind = str(item.get("@type", ""))
            if kind.endswith("google.rpc.RetryInfo") and isinstance(item.get("retryDelay"), str):
                found = parse_duration(item["retryDelay"])
                if found is not None:
                    return found
        for item in details:
            if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.ErrorInfo"):
                meta = item.get("metadata")
                if isinstance(meta, dict) and isinstance(meta.get("quotaResetDelay"), str):
                    found = parse_duration(meta["quotaResetDelay"])
                    if found is not None:
                        return found
    if err.get("type") == "usage_limit_reached":
        if isinstance(err.get("resets_in_seconds"), int | float):
            return sane_seconds(float(err["resets_in_seconds"]))
        if isinstance(err.get("resets_at"), int | float):
            return sane_seconds(max(0.0, float(err["resets_at"]) - time.time()))
    match = _AFTER_SECONDS.search(message)
    if match:
        return parse_duration(match.group(1))
    return None


def free_usage_exhausted(parsed: Any, body: bytes) -> bool:
    """A 429 saying the free usage of a rolling window is spent, as xAI words it: `code` (top level
    or under `error`) containing `free-usage-exhausted`, or the error text (the raw body when there
    is none) containing it or "included free usage"."""
    texts: list[str] = []
    error: Any = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        codes = [parsed.get("code"), error.get("code") if isinstance(error, dict) else None]
        if any(isinstance(c, str) and "free-usage-exhausted" in c.lower() for c in codes):
            return True
        if isinstance(error, str):
            texts.append(error)
        elif isinstance(error, dict) and isinstance(error.get("message"), str):
            texts.append(error["message"])
    if error is None:
        texts.append(body[:4096].decode("utf-8", "replace"))
    return any(marker in text.lower() for text in texts for marker in _FREE_USAGE_MARKERS)


def classify(status: int, body: bytes, headers: Mapping[str, str], dialect: Dialect) -> Failure:
    """Turn an upstream error answer into a `Failure` (fault or not, cooldown hint, message)."""
    try:
        parsed: Any = jsonio.loads(body) if body else None
    except ValueError:
        parsed = None
    err = _error_obj(parsed)
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    if not message:
        message = body[:2048].decode("utf-8", "replace").strip() or f"upstream returned HTTP {status}"
    err_type = err.get("type") if isinstance(err.get("type"), str) else None
    code = err.get("code") if isinstance(err.get("code"), str) else None
    not_found = status == 404 or bool(_MODEL_UNSUPPORTED.search(message))
    fault = False
    if status not in (401, 402, 429) and not not_found:
        fault = (
            status in FAULT_STATUSES
            or err_type in FAULT_TYPES
            or code in FAULT_TYPES
            or bool(_NOT_PERSISTED.search(message))
        )
    hint: float | None = None
    if status == 429:
        hint = retry_after_header(headers.get("Retry-After"))
        reset = headers.get("anthropic-ratelimit-unified-reset")
        if reset:
            try:
                unified = sane_seconds(max(0.0, float(reset) - time.time()))
            except ValueError:
                unified = None
            if unified is not None:
                hint = unified if hint is None else max(hint, unified)
        if hint is None:
            hint = body_hint(parsed, message)
    kind = FREE_USAGE_EXHAUSTED if status == 429 and free_usage_exhausted(parsed, body) else ""
    out_headers = {}
    retry_after = headers.get("Retry-After")
    if retry_after and retry_after_header(retry_after) is not None:  # passed on only when it makes sense
        out_headers["Retry-After"] = retry_after.strip()
    return Failure(
        status=status,
        body=body if parsed is not None else b"",
        dialect=dialect,
        retry_after=hint,
        fault=fault,
        not_found=not_found,
        message=message,
        err_type=err_type,
        headers=out_headers,
        kind=kind,
    )


def status_of_stream_error(dialect: Dialect, data: bytes) -> tuple[int, bytes, str]:
    """Status, JSON body and message of an error event an upstream sent before any content."""
    try:
        parsed = jsonio.loads(data)
    except ValueError:
        return 502, b"", data[:2048].decode("utf-8", "replace")
    err = _error_obj(parsed)
    if not err and isinstance(parsed, dict) and parsed.get("type") == "error":
        err = parsed  # the Responses `error` event keeps its code and message at the top level
    message = str(err.get("message") or "upstream stream error")
    status = 502
    code = err.get("code")
    if isinstance(code, int) and 400 <= code < 600:
        status = code
    elif (by_type := status_of_type(err.get("type"))) is not None:
        status = by_type
    elif (by_code := known_status(err)) is not None:  # OpenAI error codes (`invalid_prompt`, ...)
        status = by_code
    return status, data, message
