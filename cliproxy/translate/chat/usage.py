"""Chat Completions token usage: the one parser of `usage` objects, for translation and usage records.

Every non-stream passthrough chat request comes through `usage_of`, so it reads the counts inline
(`type(x) is int`) and only falls back to `as_int` for the floats some providers send.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Usage


def usage_of(u: Any) -> Usage | None:
    """A chat `usage` object as IR; `prompt_tokens` already counts cached tokens, as the IR does."""
    if type(u) is not dict:
        return None
    prompt = u.get("prompt_tokens")
    completion = u.get("completion_tokens")
    total = u.get("total_tokens")
    details = u.get("prompt_tokens_details")
    out_details = u.get("completion_tokens_details")
    cached: Any = 0
    created: Any = 0
    reasoning: Any = 0
    if type(details) is dict:
        cached = details.get("cached_tokens")
        if type(cached) is not int:
            cached = as_int(cached)
        created = details.get("cache_creation_tokens")  # not OpenAI's; some compatible providers send it
        if created is not None and type(created) is not int:
            created = as_int(created)
    if type(out_details) is dict:
        reasoning = out_details.get("reasoning_tokens")
        if type(reasoning) is not int:
            reasoning = as_int(reasoning)
    return Usage(
        prompt if type(prompt) is int else as_int(prompt),
        completion if type(completion) is int else as_int(completion),
        cached,
        reasoning,
        created or 0,
        total if type(total) is int else as_int(total),
    )


def usage_of_event(chunk: Any) -> Usage | None:
    """The usage a stream chunk carries (the last chunk, when `stream_options.include_usage` is set)."""
    return usage_of(chunk.get("usage")) if type(chunk) is dict else None


def usage_out(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }
