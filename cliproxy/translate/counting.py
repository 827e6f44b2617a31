"""Token counting across dialects: a `count_tokens` request for an upstream that counts in another one.

Anthropic (`POST /v1/messages/count_tokens`) and Gemini (`:countTokens`) both count a prompt, each
in its own shape: a Claude client's count sent to a Gemini upstream (or the other way round) is
translated like a generate request, then cut down to what the counting endpoint accepts, and the
count comes back in the client's shape. OpenAI's dialects have no counting route here; their
upstreams get a local estimate instead (`tokens.py`).
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate import Dialect
from cliproxy.translate.convert import translate_request

COUNTING_DIALECTS = frozenset({Dialect.CLAUDE, Dialect.GEMINI})
# What Anthropic's count_tokens accepts of a Messages body (it refuses `max_tokens` and the like).
_CLAUDE_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
# What a Gemini `generateContentRequest` inside countTokens may carry.
_GEMINI_COUNT_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig")


def count_request(body: dict[str, Any], src: Dialect, dst: Dialect, *, model: str) -> dict[str, Any]:
    """The count request body for a `dst` upstream, from a `src` client's count request."""
    generate = translate_request(body, src, dst, model=model, stream=False)
    if dst is Dialect.CLAUDE:
        return {name: generate[name] for name in _CLAUDE_COUNT_FIELDS if name in generate}
    inner = {name: generate[name] for name in _GEMINI_COUNT_FIELDS if name in generate}
    return {"generateContentRequest": {"model": f"models/{model}", **inner}}


def counted_tokens(answer: Any, upstream: Dialect) -> int | None:
    """The prompt's token count in an upstream's count answer (None when it has none)."""
    if not isinstance(answer, dict):
        return None
    value = answer.get("input_tokens" if upstream is Dialect.CLAUDE else "totalTokens")
    return value if type(value) is int and value >= 0 else None


def count_answer(total: int, client: Dialect) -> dict[str, Any]:
    """A count in the client's shape."""
    return {"totalTokens": total} if client is Dialect.GEMINI else {"input_tokens": total}
