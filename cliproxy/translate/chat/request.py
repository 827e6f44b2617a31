"""Chat Completions requests ⇄ IR: messages, tools, response formats, reasoning effort."""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
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
from cliproxy.translate.reasoning import effort_for, is_off


def content_parts(content: Any) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[TextPart | ImagePart] = []
    if isinstance(content, list):
        for p in content:
            if not isinstance(p, dict):
                continue
            kind = p.get("type")
            if kind in ("text", "input_text", "output_text"):
                out.append(TextPart(p.get("text") or ""))
            elif kind == "image_url":
                url = p.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str):
                    out.append(ImagePart.from_url(url))
            elif kind == "refusal":
                out.append(TextPart(p.get("refusal") or ""))
    return out


def _append(messages: list[Message], role: ir.Role, parts: list[Part]) -> None:
    """Consecutive turns of one role merge (tool results after tool results, for instance)."""
    if messages and messages[-1].role == role and role != "system":
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def decode_request(body: dict[str, Any]) -> Request:
    """A chat body as IR; leading system/developer messages are the system prompt, later ones stay in place."""
    req = Request(model=body.get("model") or "")
    leading = True
    for m in body.get("messages") or ():
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            texts: list[TextPart] = [p for p in content_parts(content) if isinstance(p, TextPart)]
            if leading:
                req.system.extend(texts)
            else:
                req.messages.append(Message("system", list(texts)))
            continue
        leading = False
        if role == "tool":
            result = ToolResultPart(m.get("tool_call_id") or "", content_parts(content), name=m.get("name"))
            _append(req.messages, "user", [result])
        elif role == "assistant":
            parts: list[Part] = []
            reasoning = m.get("reasoning_content") or m.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                parts.append(ThinkingPart(reasoning))
            parts.extend(content_parts(content))
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                args = fn.get("arguments")
                if not isinstance(args, str):
                    args = jsonio.dumps(args or {}).decode()
                parts.append(ToolCallPart(tc.get("id") or ir.new_id("call_"), fn.get("name") or "", args))
            _append(req.messages, "assistant", parts)
        else:
            _append(req.messages, "user", list(content_parts(content)))
    for t in body.get("tools") or ():
        if t.get("type", "function") == "function" and isinstance(t.get("function"), dict):
            fn = t["function"]
            req.tools.append(Tool(fn.get("name") or "", fn.get("description"), fn.get("parameters") or {}))
    tc_raw = body.get("tool_choice")
    if isinstance(tc_raw, str) and tc_raw in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(tc_raw)  # type: ignore[arg-type]
    elif isinstance(tc_raw, dict):
        name = (tc_raw.get("function") or {}).get("name") or tc_raw.get("name")
        req.tool_choice = ToolChoice("tool", name)
    req.parallel_tool_calls = body.get("parallel_tool_calls")
    req.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    stop = body.get("stop")
    req.stop = [stop] if isinstance(stop, str) else list(stop or ())
    rf = body.get("response_format")
    if isinstance(rf, dict):
        kind = rf.get("type")
        if kind == "json_schema":
            js = rf.get("json_schema") or {}
            req.response_format = ResponseFormat("json_schema", js.get("schema"), js.get("name"), js.get("strict"))
        elif kind == "json_object":
            req.response_format = ResponseFormat("json_object")
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        req.reasoning = Reasoning(effort=effort)
    req.stream = bool(body.get("stream"))
    req.user = body.get("user")
    md = body.get("metadata")
    req.metadata = md if isinstance(md, dict) else None
    return req


def _content_out(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        else:
            out.append({"type": "image_url", "image_url": {"url": p.as_url()}})
    return out


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a chat body; tool results become `tool` messages, thinking history is dropped (chat cannot replay it)."""
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": "\n\n".join(p.text for p in req.system)})
    for m in req.messages:
        if m.role == "system":
            messages.append({"role": "system", "content": "".join(p.text for p in m.parts if isinstance(p, TextPart))})
        elif m.role == "assistant":
            text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            calls = [
                {
                    "id": ir.short_id(p.id),
                    "type": "function",
                    "function": {"name": p.name, "arguments": p.arguments or "{}"},
                }
                for p in m.parts
                if isinstance(p, ToolCallPart)
            ]
            if calls:
                msg["tool_calls"] = calls
            messages.append(msg)
        else:
            rest: list[TextPart | ImagePart] = []
            for p in m.parts:
                if isinstance(p, ToolResultPart):
                    messages.append(
                        {"role": "tool", "tool_call_id": ir.short_id(p.call_id), "content": ir.text_of(p.content)}
                    )
                elif isinstance(p, TextPart | ImagePart):
                    rest.append(p)
            if rest:
                messages.append({"role": "user", "content": _content_out(rest)})
    body: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in req.tools
        ]
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        tc = req.tool_choice
        body["tool_choice"] = tc.mode if tc.mode != "tool" else {"type": "function", "function": {"name": tc.name}}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = req.stop
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        if rf.kind == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": "json_object"}
    if req.reasoning is not None:
        effort = "none" if is_off(req.reasoning) else effort_for(req.reasoning)
        if effort:
            body["reasoning_effort"] = effort
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.user and len(req.user) <= ir.OPENAI_USER_MAX:
        body["user"] = req.user
    return body


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a chat body."""
    effort = "none" if is_off(r) else effort_for(r)
    if effort:
        body["reasoning_effort"] = effort
