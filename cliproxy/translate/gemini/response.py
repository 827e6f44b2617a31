"""generateContent non-stream answers ⇄ IR; STOP with function calls means a tool-call stop."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.gemini.parts import CallIds, parts_in
from cliproxy.translate.gemini.usage import usage_of, usage_out
from cliproxy.translate.ir import Part, Response, StopReason, TextPart, ThinkingPart, ToolCallPart

FINISH_IN: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
FINISH_OUT: dict[str, str] = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}


def decode_response(body: dict[str, Any]) -> Response:
    """A GenerateContentResponse as IR; STOP with function calls means a tool-call stop."""
    cands = body.get("candidates") or [{}]
    cand = cands[0]
    parts = parts_in((cand.get("content") or {}).get("parts"), CallIds())
    stop = FINISH_IN.get(cand.get("finishReason") or "STOP", "stop")
    if stop == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_calls"
    return Response(
        id=body.get("responseId") or ir.new_id(""),
        model=body.get("modelVersion") or "",
        parts=parts,
        stop_reason=stop,
        usage=usage_of(body.get("usageMetadata")),
    )


def _part_out(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"text": p.text}
    if isinstance(p, ToolCallPart):
        try:
            args = jsonio.loads(p.arguments) if p.arguments else {}
        except ValueError:
            args = {}
        out: dict[str, Any] = {"functionCall": {"id": p.id, "name": p.name, "args": args}}
        if p.family == "gemini" and p.signature:
            out["thoughtSignature"] = p.signature
        return out
    if isinstance(p, ThinkingPart) and not p.redacted:
        part: dict[str, Any] = {"text": p.text, "thought": True}
        if p.family == "gemini" and p.signature:
            part["thoughtSignature"] = p.signature
        return part
    return None


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a GenerateContentResponse."""
    parts = [o for o in map(_part_out, resp.parts) if o is not None]
    out: dict[str, Any] = {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": FINISH_OUT[resp.stop_reason], "index": 0}
        ],
        "modelVersion": resp.model,
        "responseId": resp.id,
    }
    if resp.usage is not None:
        out["usageMetadata"] = usage_out(resp.usage)
    return out
