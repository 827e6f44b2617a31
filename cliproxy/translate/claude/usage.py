"""Anthropic Messages token usage: the one parser of `usage` objects, for translation and usage records.

Anthropic counts the prompt in three disjoint parts: `input_tokens` (read fresh),
`cache_read_input_tokens` and `cache_creation_input_tokens`; the whole prompt is their sum. The IR
counts the whole prompt, so the parts are added on the way in and `input_tokens` is the remainder on
the way out.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Usage


def usage_of(u: Any, earlier: Usage | None = None) -> Usage | None:
    """An Anthropic `usage` object as IR.

    A stream reports usage twice: `message_start` carries the input side, `message_delta` the final
    output count, and its input fields may be missing or null. Given the `earlier` report, a missing
    or null field keeps its earlier value, so a stream decoder can follow the reports one by one.
    """
    if type(u) is not dict:
        return None
    if earlier is None:
        cached = as_int(u.get("cache_read_input_tokens"))
        created = as_int(u.get("cache_creation_input_tokens"))
        fresh = as_int(u.get("input_tokens"))
        return Usage(fresh + cached + created, as_int(u.get("output_tokens")), cached, 0, created)
    cached = _count(u, "cache_read_input_tokens", earlier.cached_tokens)
    created = _count(u, "cache_creation_input_tokens", earlier.cache_creation_tokens)
    fresh = _count(u, "input_tokens", native_input_tokens(earlier))
    return Usage(fresh + cached + created, _count(u, "output_tokens", earlier.output_tokens), cached, 0, created)


def _count(u: dict[str, Any], key: str, earlier: int) -> int:
    value = u.get(key)
    return earlier if value is None else as_int(value)


def usage_of_event(event: Any) -> Usage | None:
    """The usage of a stream event: `message_delta` carries it on top, `message_start` in its message."""
    if type(event) is not dict:
        return None
    u = event.get("usage")
    if u is None:
        message = event.get("message")
        u = message.get("usage") if type(message) is dict else None
    return usage_of(u)


def native_input_tokens(u: Usage) -> int:
    """Anthropic's own `input_tokens`: the prompt tokens neither read from nor written to the cache."""
    return max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens)


def usage_out(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": native_input_tokens(u),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }
