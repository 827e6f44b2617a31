"""Anthropic Messages requests ⇄ IR: content blocks, cache marks, tools, thinking settings."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.codec import as_int
from cliproxy.translate.ir import (
    ImagePart,
    Message,
    Part,
    Reasoning,
    Request,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from cliproxy.translate.reasoning import budget_for, is_off
from cliproxy.translate.signatures import unwrap

DEFAULT_MAX_TOKENS = 8192  # Claude requires max_tokens; other dialects may omit it

_EPHEMERAL = {"type": "ephemeral"}


def _image_in(block: dict[str, Any]) -> ImagePart | None:
    src = block.get("source") or {}
    if src.get("type") == "base64":
        return ImagePart(data=src.get("data"), media_type=src.get("media_type"), cache="cache_control" in block)
    if src.get("type") == "url":
        return ImagePart(url=src.get("url"), cache="cache_control" in block)
    return None


def _result_content(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[TextPart | ImagePart] = []
    for b in content or ():
        kind = b.get("type")
        if kind == "text":
            out.append(TextPart(b.get("text") or ""))
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                out.append(img)
    return out


def blocks_in(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[Part] = []
    for b in content or ():
        kind = b.get("type")
        if kind == "text":
            parts.append(TextPart(b.get("text") or "", "cache_control" in b))
        elif kind == "tool_use":
            parts.append(
                ToolCallPart(b.get("id") or "", b.get("name") or "", jsonio.dumps(b.get("input", {})).decode())
            )
        elif kind == "tool_result":
            parts.append(
                ToolResultPart(
                    b.get("tool_use_id") or "",
                    _result_content(b.get("content")),
                    bool(b.get("is_error")),
                    cache="cache_control" in b,
                )
            )
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                parts.append(img)
        elif kind == "thinking":
            family, sig = unwrap(b.get("signature") or None, native="claude")
            parts.append(ThinkingPart(b.get("thinking") or "", sig, family))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart("", b.get("data"), "claude", redacted=True))
    return parts


def decode_request(body: dict[str, Any]) -> Request:
    """A Messages body as IR; `role: system` entries inside `messages` (Claude Code) are kept in place."""
    req = Request(model=body.get("model") or "")
    system = body.get("system")
    if isinstance(system, str):
        req.system.append(TextPart(system))
    elif isinstance(system, list):
        req.system.extend(
            TextPart(b.get("text") or "", "cache_control" in b) for b in system if b.get("type") == "text"
        )
    for m in body.get("messages") or ():
        role = m.get("role")
        parts = blocks_in(m.get("content"))
        if role == "system":
            req.messages.append(Message("system", [p for p in parts if isinstance(p, TextPart)]))
        else:
            req.messages.append(Message("assistant" if role == "assistant" else "user", parts))
    for t in body.get("tools") or ():
        if "input_schema" in t or t.get("type") in (None, "custom"):
            req.tools.append(Tool(t.get("name") or "", t.get("description"), t.get("input_schema") or {}))
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        kind = tc.get("type")
        if kind == "any":
            req.tool_choice = ToolChoice("required")
        elif kind == "tool":
            req.tool_choice = ToolChoice("tool", tc.get("name"))
        elif kind in ("auto", "none"):
            req.tool_choice = ToolChoice(kind)
        if tc.get("disable_parallel_tool_use"):
            req.parallel_tool_calls = False
    req.max_tokens = body.get("max_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    req.top_k = body.get("top_k")
    req.stop = list(body.get("stop_sequences") or ())
    thinking = body.get("thinking")
    oc = body.get("output_config")
    output_config: dict[str, Any] = oc if isinstance(oc, dict) else {}
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            req.reasoning = Reasoning(budget=as_int(thinking.get("budget_tokens")) or None, include_thoughts=True)
        elif kind == "adaptive":
            req.reasoning = Reasoning(adaptive=True, include_thoughts=thinking.get("display") != "omitted")
        elif kind == "disabled":
            req.reasoning = Reasoning(effort="none", budget=0)
    effort = output_config.get("effort")
    if isinstance(effort, str) and not is_off(req.reasoning):
        req.reasoning = req.reasoning or Reasoning()
        req.reasoning.effort = effort
    fmt = output_config.get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        req.response_format = ResponseFormat("json_schema", fmt.get("schema"))
    req.stream = bool(body.get("stream"))
    md = body.get("metadata")
    if isinstance(md, dict):
        req.user = md.get("user_id")
    return req


def _image_out(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        src = {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data}
    else:
        src = {"type": "url", "url": p.url or ""}
    out: dict[str, Any] = {"type": "image", "source": src}
    if p.cache:
        out["cache_control"] = _EPHEMERAL
    return out


def _text_out(p: TextPart) -> dict[str, Any]:
    if p.cache:
        return {"type": "text", "text": p.text, "cache_control": _EPHEMERAL}
    return {"type": "text", "text": p.text}


def _blocks_out(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            if p.text:  # Claude rejects empty text blocks
                out.append(_text_out(p))
        elif isinstance(p, ToolCallPart):
            try:
                args = jsonio.loads(p.arguments) if p.arguments else {}
            except ValueError:
                args = {}
            out.append(
                {"type": "tool_use", "id": p.id, "name": p.name, "input": args if isinstance(args, dict) else {}}
            )
        elif isinstance(p, ToolResultPart):
            content: Any = (
                ir.text_of(p.content)
                if all(isinstance(c, TextPart) for c in p.content)
                else [_text_out(c) if isinstance(c, TextPart) else _image_out(c) for c in p.content]
            )
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": p.call_id, "content": content}
            if p.is_error:
                block["is_error"] = True
            if p.cache:
                block["cache_control"] = _EPHEMERAL
            out.append(block)
        elif isinstance(p, ImagePart):
            out.append(_image_out(p))
        elif isinstance(p, ThinkingPart) and p.family == "claude" and p.signature:
            if p.redacted:
                out.append({"type": "redacted_thinking", "data": p.signature})
            else:
                out.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
    return out


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a Messages body: alternating turns, max_tokens always set, only Claude-signed thinking replayed."""
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        blocks = _blocks_out(m.parts)
        if not blocks:
            continue
        role = m.role
        if role != "system" and messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # Claude wants alternating turns
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.system:
        body["system"] = [_text_out(p) for p in req.system if p.text]
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    thinking_on = False
    r = req.reasoning
    if r is not None:
        body["thinking"], max_tokens = thinking_for(r, max_tokens)
        thinking_on = body["thinking"]["type"] != "disabled"
        if thinking_on and _lost_thinking(messages):
            # An assistant tool turn without its signed thinking block is rejected while thinking is on;
            # the history came from another family, so this turn runs without thinking.
            del body["thinking"]
            thinking_on = False
    body["max_tokens"] = max_tokens
    if not thinking_on:  # Claude refuses sampling settings while thinking
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.top_k is not None:
            body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": t.parameters or {"type": "object", "properties": {}},
            }
            for t in req.tools
        ]
    tc = req.tool_choice
    if tc is not None or req.parallel_tool_calls is False:
        mode = tc.mode if tc is not None else "auto"
        choice: dict[str, Any] = {"type": {"required": "any"}.get(mode, mode)}
        if mode == "tool":
            choice["name"] = tc.name if tc is not None else None
        if req.parallel_tool_calls is False and mode != "none":
            choice["disable_parallel_tool_use"] = True
        if req.tools or mode == "none":
            body["tool_choice"] = choice
    rf = req.response_format
    if rf is not None and rf.kind == "json_schema" and rf.schema:
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.schema}}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    return body


def thinking_for(r: Reasoning, max_tokens: int) -> tuple[dict[str, Any], int]:
    """Claude's `thinking` for IR reasoning, and a max_tokens that leaves room above the budget."""
    if is_off(r):
        return {"type": "disabled"}, max_tokens
    if r.adaptive and r.budget in (None, -1):
        return {"type": "adaptive"}, max_tokens
    budget = max(1024, budget_for(r))  # Claude's minimum budget
    return {"type": "enabled", "budget_tokens": budget}, max(max_tokens, budget + 4096)


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a Claude body."""
    body["thinking"], body["max_tokens"] = thinking_for(r, as_int(body.get("max_tokens")) or DEFAULT_MAX_TOKENS)
    if body["thinking"]["type"] != "disabled":
        for key in ("temperature", "top_p", "top_k"):
            body.pop(key, None)


def _lost_thinking(messages: list[dict[str, Any]]) -> bool:
    for m in reversed(messages):
        if m["role"] == "assistant":
            blocks = m["content"]
            has_tool = any(b["type"] == "tool_use" for b in blocks)
            return has_tool and blocks[0]["type"] not in ("thinking", "redacted_thinking")
    return False
