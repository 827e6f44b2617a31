"""Per-request usage records: a bounded in-memory ring plus subscribers that may persist them.

The dispatcher records one `UsageRecord` when a request's outcome is consumed or closed. Token
counts come from the upstream's own usage fields, parsed cheaply (`tokens_from`): passthrough
streams only parse events that mention usage. Subscribers (SQLite persistence, per-key budgets,
metrics) get every record synchronously and must not block.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000


@dataclass(slots=True)
class Tokens:
    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0
    cache_creation: int = 0
    total: int = 0

    def merge(self, other: Tokens) -> None:
        """Later usage reports win field by field when they carry a value (streams report in pieces)."""
        if other.input:
            self.input = other.input
        if other.output:
            self.output = other.output
        if other.cached:
            self.cached = other.cached
        if other.reasoning:
            self.reasoning = other.reasoning
        if other.cache_creation:
            self.cache_creation = other.cache_creation
        if other.total:
            self.total = other.total


@dataclass(slots=True)
class UsageRecord:
    timestamp: float
    request_id: str
    client_key: str  # redacted key or the key object's name
    credential_id: str
    auth_index: str
    provider: str
    model: str  # upstream model
    alias: str  # client-visible model
    client_dialect: str
    upstream_dialect: str
    endpoint: str
    status: int
    failed: bool
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    stream: bool = False
    attempts: int = 1
    client_ip: str = ""
    x_forwarded_for: str = ""
    user_agent: str = ""
    reasoning_effort: str = ""
    service_tier: str = ""


Subscriber = Callable[[UsageRecord], None]


class UsageStore:
    """The last `capacity` records, newest last; `subscribe` to see every record as it is added."""

    __slots__ = ("_records", "_subscribers", "total")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._records: deque[UsageRecord] = deque(maxlen=capacity)
        self._subscribers: list[Subscriber] = []
        self.total = 0

    def add(self, record: UsageRecord) -> None:
        self._records.append(record)
        self.total += 1
        for callback in self._subscribers:
            try:
                callback(record)
            except Exception:  # a broken subscriber must never break requests
                log.exception("usage subscriber failed")

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register `callback`; returns a function that unsubscribes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def __iter__(self) -> Iterator[UsageRecord]:
        return iter(tuple(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def recent(self, limit: int = 100) -> list[UsageRecord]:
        items = list(self._records)
        return items[-limit:] if limit else items


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def tokens_from(dialect: Dialect, obj: Any) -> Tokens | None:
    """Token counts from a response body or stream event of `dialect` (None when it carries none)."""
    if not isinstance(obj, dict):
        return None
    if dialect is Dialect.GEMINI:
        meta = obj.get("usageMetadata")
        if not isinstance(meta, dict):
            return None
        prompt = _int(meta.get("promptTokenCount"))
        output = _int(meta.get("candidatesTokenCount"))
        reasoning = _int(meta.get("thoughtsTokenCount"))
        return Tokens(
            input=prompt,
            output=output + reasoning,
            cached=_int(meta.get("cachedContentTokenCount")),
            reasoning=reasoning,
            total=_int(meta.get("totalTokenCount")) or prompt + output + reasoning,
        )
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        # Responses stream events wrap the response; Anthropic message_start wraps the message.
        inner = obj.get("response") or obj.get("message")
        if isinstance(inner, dict) and isinstance(inner.get("usage"), dict):
            usage = inner["usage"]
        else:
            return None
    if dialect is Dialect.CLAUDE:
        inp = _int(usage.get("input_tokens"))
        out = _int(usage.get("output_tokens"))
        cached = _int(usage.get("cache_read_input_tokens"))
        created = _int(usage.get("cache_creation_input_tokens"))
        return Tokens(inp, out, cached, 0, created, inp + out + cached + created if (inp or out) else 0)
    chat_prompt = usage.get("prompt_tokens")
    if chat_prompt is not None or "completion_tokens" in usage:  # chat: every request of the main route
        inp = chat_prompt if type(chat_prompt) is int else 0  # `_int`, inlined on this hot path
        completion = usage.get("completion_tokens")
        out = completion if type(completion) is int else 0
        total = usage.get("total_tokens")
        details = usage.get("prompt_tokens_details")
        out_details = usage.get("completion_tokens_details")
        return Tokens(
            inp,
            out,
            _int(details.get("cached_tokens")) if type(details) is dict else 0,
            _int(out_details.get("reasoning_tokens")) if type(out_details) is dict else 0,
            0,
            (total if type(total) is int else 0) or inp + out,
        )
    details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    inp, out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    return Tokens(
        inp,
        out,
        _int(details.get("cached_tokens")) if isinstance(details, dict) else 0,
        _int(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else 0,
        0,
        _int(usage.get("total_tokens")) or inp + out,
    )


WHOLE_PARSE_BELOW = 8192  # bytes: a shorter answer is parsed whole (about as cheap as finding its usage)
_USAGE_KEY = {Dialect.GEMINI: (b'"usageMetadata"', "usageMetadata")}
_DEFAULT_USAGE_KEY = (b'"usage"', "usage")


def tokens_in_answer(dialect: Dialect, data: bytes) -> Tokens | None:
    """Token counts from a whole (non-stream) JSON answer of `dialect`.

    A long answer is not parsed whole: every dialect puts its usage object after the content, so
    the last `"usage"` key (`"usageMetadata"` for Gemini) is found and only the object after it is
    parsed, up to the brace that balances its opening one (usage objects hold no strings with
    braces). A quoted `"usage"` inside generated text is escaped in JSON (`\\"usage\\"`), so it
    never matches. When the object cannot be read that way, the whole answer is parsed after all.
    """
    if len(data) >= WHOLE_PARSE_BELOW:
        key, name = _USAGE_KEY.get(dialect, _DEFAULT_USAGE_KEY)
        at = data.rfind(key)
        if at >= 0:
            start = data.find(b"{", at + len(key))
            if start > 0 and data[at + len(key) : start].strip() == b":":
                end = data.find(b"}", start)
                while end > 0 and data.count(b"{", start, end) != data.count(b"}", start, end) + 1:
                    end = data.find(b"}", end + 1)  # that brace closed a nested detail object
                if end > 0:
                    try:
                        usage = jsonio.loads(data[start : end + 1])
                    except ValueError:
                        usage = None
                    if isinstance(usage, dict):
                        return tokens_from(dialect, {name: usage})
    try:
        return tokens_from(dialect, jsonio.loads(data))
    except ValueError:
        return None
