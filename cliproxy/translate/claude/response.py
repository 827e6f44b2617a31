"""Anthropic Messages non-stream answers ⇄ IR; foreign thinking signatures are wrapped for the way back."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.claude.blocks import blocks_in, claude_id
from cliproxy.translate.claude.usage import usage_of, usage_out
from cliproxy.translate.ir import Part, Response, StopReason, TextPart, ThinkingPart, ToolCallPart, Usage
from cliproxy.translate.signatures import wrap

STOP_IN: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop_sequence",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
STOP_OUT: dict[str, str] = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def decode_response(body: dict[str, Any]) -> Response:
    """A Messages response as IR."""
    parts = blocks_in(body.get("content"))
    return Response(
        id=body.get("id") or ir.new_id("msg_"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=STOP_IN.get(body.get("stop_reason") or "end_turn", "stop"),
        usage=usage_of(body.get("usage")),
    )


def _response_block(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ToolCallPart):
        try:
            args = jsonio.loads(p.arguments) if p.arguments else {}
        except ValueError:
            args = {}
        return {"type": "tool_use", "id": claude_id(p.id), "name": p.name, "input": args}
    if isinstance(p, ThinkingPart):
        if p.redacted:
            return {"type": "redacted_thinking", "data": p.signature or ""} if p.family == "claude" else None
        sig = wrap(p.family, p.signature, native="claude") if p.signature else ""
        return {"type": "thinking", "thinking": p.text, "signature": sig}
    return None


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a Messages response; foreign signatures are wrapped so they can come back to their family."""
    content = [b for b in map(_response_block, resp.parts) if b is not None]
    return {
        "id": resp.id if resp.id.startswith("msg_") else "msg_" + resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": STOP_OUT[resp.stop_reason],
        "stop_sequence": None,
        "usage": usage_out(resp.usage or Usage()),
    }
