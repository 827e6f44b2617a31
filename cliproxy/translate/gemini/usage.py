"""Gemini token usage: the one parser of `usageMetadata`, for translation and usage records.

Google's `usageMetadata` counts:
- `promptTokenCount`: the prompt, cached content included (`cachedContentTokenCount` is that part);
- `toolUsePromptTokenCount`: tokens of tool-use prompts (built-in tools such as Google Search feed
  their results back as prompt), counted apart from `promptTokenCount`;
- `candidatesTokenCount`: the answer, and `thoughtsTokenCount`: the thinking, counted apart from it;
- `totalTokenCount`: all of the above, prompt and tool-use prompt included.
So the IR input is prompt plus tool-use prompt and the IR output is candidates plus thoughts: both
are billed, and only then do input plus output add up to Google's own total.
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Usage


def usage_of(meta: Any) -> Usage | None:
    """A `usageMetadata` object as IR."""
    if type(meta) is not dict:
        return None
    thoughts = as_int(meta.get("thoughtsTokenCount"))
    return Usage(
        as_int(meta.get("promptTokenCount")) + as_int(meta.get("toolUsePromptTokenCount")),
        as_int(meta.get("candidatesTokenCount")) + thoughts,
        as_int(meta.get("cachedContentTokenCount")),
        thoughts,
        0,
        as_int(meta.get("totalTokenCount")),
    )


def usage_of_event(chunk: Any) -> Usage | None:
    """Every stream chunk is a whole GenerateContentResponse, with the counts so far."""
    return usage_of(chunk.get("usageMetadata")) if type(chunk) is dict else None


def usage_out(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens - u.reasoning_tokens,
        "totalTokenCount": u.total_tokens,
    }
    if u.cached_tokens:
        out["cachedContentTokenCount"] = u.cached_tokens
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    return out
