"""Responses token usage: the one parser of `usage` objects, for translation and usage records."""

from __future__ import annotations

from typing import Any

from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Usage


def usage_of(u: Any) -> Usage | None:
    """A Responses `usage` object as IR: `input_tokens` counts cached tokens, `output_tokens` reasoning."""
    if type(u) is not dict:
        return None
    details = u.get("input_tokens_details")
    out_details = u.get("output_tokens_details")
    return Usage(
        as_int(u.get("input_tokens")),
        as_int(u.get("output_tokens")),
        as_int(details.get("cached_tokens")) if type(details) is dict else 0,
        as_int(out_details.get("reasoning_tokens")) if type(out_details) is dict else 0,
        0,
        as_int(u.get("total_tokens")),
    )


def usage_of_event(event: Any) -> Usage | None:
    """The usage of a stream event: only the terminal events' `response` object carries one."""
    if type(event) is not dict:
        return None
    response = event.get("response")
    return usage_of(response.get("usage")) if type(response) is dict else None


def usage_out(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }
