"""Responses non-stream answers ⇄ IR: output items, and the response object streams also end with."""

from __future__ import annotations

import time
from typing import Any

from cliproxy.translate import ir
from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import Part, Response, StopReason, TextPart, ThinkingPart, ToolCallPart, Usage
from cliproxy.translate.responses.request import content_in
from cliproxy.translate.responses.usage import usage_of, usage_out
from cliproxy.translate.signatures import wrap


def _output_parts(output: Any) -> list[Part]:
    parts: list[Part] = []
    for item in output or ():
        kind = item.get("type")
        if kind == "message":
            parts.extend(content_in(item.get("content")))
        elif kind == "function_call":
            parts.append(
                ToolCallPart(
                    item.get("call_id") or item.get("id") or "", item.get("name") or "", item.get("arguments") or ""
                )
            )
        elif kind == "reasoning":
            text = "".join(s.get("text") or "" for s in item.get("summary") or ())
            if not text:
                text = "".join(c.get("text") or "" for c in item.get("content") or ())
            parts.append(ThinkingPart(text, item.get("encrypted_content"), "openai", item_id=item.get("id")))
    return parts


def stop_in(body: dict[str, Any], parts: list[Part]) -> StopReason:
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if any(isinstance(p, ToolCallPart) for p in parts) else "stop"


def decode_response(body: dict[str, Any]) -> Response:
    """A Responses object as IR; the stop reason comes from status and the presence of calls."""
    parts = _output_parts(body.get("output"))
    return Response(
        id=body.get("id") or ir.new_id("resp_"),
        model=body.get("model") or "",
        parts=parts,
        stop_reason=stop_in(body, parts),
        usage=usage_of(body.get("usage")),
        created=as_int(body.get("created_at")),
    )


def _output_items(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    msg: dict[str, Any] | None = None
    for p in parts:
        if isinstance(p, TextPart):
            if msg is None:
                msg = {
                    "type": "message",
                    "id": ir.new_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [],
                }
                out.append(msg)
            msg["content"].append({"type": "output_text", "text": p.text, "annotations": []})
            continue
        msg = None
        if isinstance(p, ToolCallPart):
            out.append(
                {
                    "type": "function_call",
                    "id": ir.new_id("fc_"),
                    "call_id": p.id,
                    "name": p.name,
                    "arguments": p.arguments or "{}",
                    "status": "completed",
                }
            )
        elif isinstance(p, ThinkingPart) and not p.redacted:
            item: dict[str, Any] = {
                "type": "reasoning",
                "id": p.item_id or ir.new_id("rs_"),
                "summary": [{"type": "summary_text", "text": p.text}] if p.text else [],
            }
            if p.signature:
                item["encrypted_content"] = wrap(p.family, p.signature, native="openai")
            out.append(item)
    return out


def response_object(
    rid: str, model: str, created: int, status: str, output: list[dict[str, Any]], usage: Usage | None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "previous_response_id": None,
        "usage": usage_out(usage) if usage is not None else None,
    }
    return obj


def encode_response(resp: Response) -> dict[str, Any]:
    """IR as a Responses object; length and content-filter stops make the response and its last
    output item `incomplete`."""
    status = "incomplete" if resp.stop_reason in ("length", "content_filter") else "completed"
    rid = resp.id if resp.id.startswith("resp_") else "resp_" + resp.id
    output = _output_items(resp.parts)
    if status == "incomplete" and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"  # the item the answer was cut off in
    obj = response_object(rid, resp.model, resp.created or int(time.time()), status, output, resp.usage)
    if resp.stop_reason == "content_filter":
        obj["incomplete_details"] = {"reason": "content_filter"}
    return obj
