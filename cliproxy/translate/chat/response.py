"""Chat Completions non-stream answers ⇄ IR (the first choice)."""

from __future__ import annotations

import time
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.chat.request import content_parts
from cliproxy.translate.chat.usage import usage_of, usage_out
from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Part, Response, StopReason, TextPart, ThinkingPart, ToolCallPart

FINISH_IN: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
FINISH_OUT: dict[str, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


def decode_response(body: dict[str, Any]) -> Response:
    """A chat completion as IR (first choice; `reasoning_content` from DeepSeek-style providers kept)."""
    choices = body.get("choices") or [{}]
    choice = choices[0]
    msg = choice.get("message") or {}
    parts: list[Part] = []
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(reasoning))
    content = msg.get("content")
    if content:
        parts.extend(content_parts(content))
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = jsonio.dumps(args or {}).decode()
        parts.append(ToolCallPart(tc.get("id") or ir.new_id("call_"), fn.get("name") or "", args))
    stop = FINISH_IN.get(choice.get("finish_reason") or "stop", "stop")
    if stop == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_calls"
    return Response(
        id=body.get("id") or ir.new_id("chatcmpl-"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=stop,
        usage=usage_of(body.get("usage")),
        created=as_int(body.get("created")),
    )


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a chat completion; thinking goes to `reasoning_content`, which the openai SDK tolerates."""
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    thinking = "".join(p.text for p in resp.parts if isinstance(p, ThinkingPart))
    if thinking:
        msg["reasoning_content"] = thinking
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
        for p in resp.parts
        if isinstance(p, ToolCallPart)
    ]
    if calls:
        msg["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": resp.id if resp.id.startswith("chatcmpl") else "chatcmpl-" + resp.id,
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": resp.model,
        "choices": [{"index": 0, "message": msg, "finish_reason": FINISH_OUT[resp.stop_reason], "logprobs": None}],
    }
    if resp.usage is not None:
        out["usage"] = usage_out(resp.usage)
    return out
