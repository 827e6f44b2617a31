"""Responses (and Codex) requests ⇄ IR: input items, instructions, namespaced tools, reasoning.

Responses takes text, images and files (no audio), in user turns and in tool outputs alike; an
assistant turn holds only non-empty output text. Claude's `web_search` server tool is Responses'
`web_search` tool (its domain allow-list becomes the filter; a block-list has no equivalent and is
refused).
"""

from __future__ import annotations

from typing import Any

from cliproxy.translate import ir
from cliproxy.translate.ir import (
    FilePart,
    ImagePart,
    Media,
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
    Untranslatable,
    WebSearch,
)
from cliproxy.translate.media import data_url, decoded_text, filename_for, kind_of, omitted, split_data_url
from cliproxy.translate.reasoning import effort_for, is_off
from cliproxy.translate.signatures import unwrap
from cliproxy.translate.tool_schema import object_root

_WEB_SEARCH = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26"})


def _file_in(p: dict[str, Any]) -> FilePart | None:
    name = p.get("filename")
    raw = p.get("file_data")
    if isinstance(raw, str) and raw:
        parsed = split_data_url(raw)
        media, data = parsed if parsed is not None else ("application/pdf", raw)
        return FilePart(media, data, filename=name)
    if p.get("file_url"):
        return FilePart("application/pdf", url=p["file_url"], filename=name)
    if p.get("file_id"):
        return FilePart(None, file_id=p["file_id"], family="openai", filename=name)
    return None


def content_in(content: Any) -> list[Media]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[Media] = []
    for p in content or ():
        kind = p.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append(TextPart(p.get("text") or "", "cache_control" in p))
        elif kind == "refusal":
            out.append(TextPart(p.get("refusal") or ""))
        elif kind == "input_image":
            url = p.get("image_url")
            if isinstance(url, dict):
                url = url.get("url")
            detail = p.get("detail") if isinstance(p.get("detail"), str) else None
            if isinstance(url, str):
                image = ImagePart.from_url(url)
                image.detail = detail
                out.append(image)
            elif p.get("file_id"):
                out.append(FilePart("image/*", file_id=p["file_id"], family="openai"))
        elif kind == "input_file":
            file = _file_in(p)
            if file is not None:
                out.append(file)
    return out


def _append(messages: list[Message], role: ir.Role, parts: list[Part]) -> None:
    if messages and messages[-1].role == role and role != "system":
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def _flat_tools(tools: Any, req: Request) -> None:
    for t in tools or ():
        kind = t.get("type")
        if kind == "function":
            req.tools.append(
                Tool(t.get("name") or "", t.get("description"), t.get("parameters") or {}, "cache_control" in t)
            )
        elif kind == "namespace":  # Codex groups sub-agent tools; other dialects only know flat functions
            _flat_tools(t.get("tools"), req)
        elif kind in _WEB_SEARCH:
            filters = t.get("filters")
            allowed = filters.get("allowed_domains") if isinstance(filters, dict) else None
            req.web_search = WebSearch(allowed, None, t.get("user_location"))


def decode_request(body: dict[str, Any]) -> Request:
    """A Responses body as IR: `input` items, `instructions`, namespaced (Codex) tools flattened."""
    req = Request(model=body.get("model") or "")
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        req.system.append(TextPart(instructions))
    inp = body.get("input")
    if isinstance(inp, str):
        req.messages.append(Message("user", [TextPart(inp)]))
    else:
        leading = True
        for item in inp or ():
            kind = item.get("type") or "message"
            if kind == "message":
                role = item.get("role")
                parts = content_in(item.get("content"))
                if role in ("system", "developer"):
                    texts = [p for p in parts if isinstance(p, TextPart)]
                    if leading:
                        req.system.extend(texts)
                    else:
                        req.messages.append(Message("system", list(texts)))
                    continue
                leading = False
                _append(req.messages, "assistant" if role == "assistant" else "user", list(parts))
                continue
            leading = False
            if kind == "function_call":
                call = ToolCallPart(item.get("call_id") or item.get("id") or "", item.get("name") or "", "")
                call.arguments = item.get("arguments") or "{}"
                _append(req.messages, "assistant", [call])
            elif kind == "function_call_output":
                out = item.get("output")
                content = content_in(out) if out is not None else []
                _append(req.messages, "user", [ToolResultPart(item.get("call_id") or "", content)])
            elif kind == "reasoning":
                text = "".join(s.get("text") or "" for s in item.get("summary") or ())
                family, enc = unwrap(item.get("encrypted_content"), native="openai")
                _append(req.messages, "assistant", [ThinkingPart(text, enc, family, item_id=item.get("id"))])
    _flat_tools(body.get("tools"), req)
    tc = body.get("tool_choice")
    if isinstance(tc, str) and tc in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(tc)  # type: ignore[arg-type]
    elif isinstance(tc, dict) and tc.get("type") == "function":
        req.tool_choice = ToolChoice("tool", tc.get("name"))
    req.parallel_tool_calls = body.get("parallel_tool_calls")
    req.max_tokens = body.get("max_output_tokens")
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    text_cfg = body.get("text")
    fmt = text_cfg.get("format") if isinstance(text_cfg, dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            req.response_format = ResponseFormat(
                "json_schema", fmt.get("schema"), fmt.get("name"), fmt.get("strict"), fmt.get("description")
            )
        elif fmt.get("type") == "json_object":
            req.response_format = ResponseFormat("json_object")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and (reasoning.get("effort") or reasoning.get("summary")):
        req.reasoning = Reasoning(effort=reasoning.get("effort"), summary=reasoning.get("summary"))
        if reasoning.get("summary") not in (None, "none"):
            req.reasoning.include_thoughts = True
    req.stream = bool(body.get("stream"))
    req.user = body.get("user")
    md = body.get("metadata")
    req.metadata = md if isinstance(md, dict) else None
    key = body.get("prompt_cache_key")
    req.cache_key = key if isinstance(key, str) and key else None
    return req


def _media_out(p: ImagePart | FilePart) -> dict[str, Any]:
    """An input part; audio and video, which Responses cannot take, become a marker."""
    if isinstance(p, ImagePart):
        return {"type": "input_image", "image_url": p.as_url(), "detail": p.detail or "auto"}
    kind = kind_of(p.media_type)
    if p.file_id and p.family == "openai":
        if kind == "image":
            return {"type": "input_image", "file_id": p.file_id, "detail": "auto"}
        return {"type": "input_file", "file_id": p.file_id}
    if kind == "text" and (text := decoded_text(p)) is not None:
        return {"type": "input_text", "text": text}
    if kind in ("pdf", "document"):
        if p.data is not None:
            return {"type": "input_file", "file_data": data_url(p.media_type, p.data), "filename": filename_for(p)}
        if p.url:
            return {"type": "input_file", "file_url": p.url}
    return {"type": "input_text", "text": omitted(p, "Responses").text}


def _content_out(parts: list[Media], assistant: bool) -> list[dict[str, Any]]:
    if assistant:  # an assistant turn holds output text only, and never an empty one
        return [{"type": "output_text", "text": p.text} for p in parts if isinstance(p, TextPart) and p.text]
    return [
        {"type": "input_text", "text": p.text} if isinstance(p, TextPart) else _media_out(p)
        for p in parts
        if not isinstance(p, TextPart) or p.text
    ]


def _items_out(req: Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for m in req.messages:
        if m.role == "system":
            texts: list[Media] = [p for p in m.parts if isinstance(p, TextPart)]
            content = _content_out(texts, False)
            if content:
                items.append({"type": "message", "role": "developer", "content": content})
            continue
        assistant = m.role == "assistant"
        run: list[Media] = []

        def flush(run: list[Media] = run, assistant: bool = assistant) -> None:
            content = _content_out(run, assistant)
            if content:
                items.append({"type": "message", "role": "assistant" if assistant else "user", "content": content})
            run.clear()

        for p in m.parts:
            if isinstance(p, TextPart | ImagePart | FilePart):
                run.append(p)
                continue
            flush()
            if isinstance(p, ToolCallPart):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": ir.short_id(p.id, 64),
                        "name": p.name,
                        "arguments": p.arguments or "{}",
                    }
                )
            elif isinstance(p, ToolResultPart):
                output: Any = (
                    ir.text_of(p.content)
                    if all(isinstance(c, TextPart) for c in p.content)
                    else _content_out(p.content, False)
                )
                items.append({"type": "function_call_output", "call_id": ir.short_id(p.call_id, 64), "output": output})
            elif isinstance(p, ThinkingPart) and p.family == "openai" and p.signature:
                # Only encrypted reasoning can be replayed statelessly (store=false); the rest is dropped.
                summary = [{"type": "summary_text", "text": p.text}] if p.text else []
                rid = p.item_id or ir.new_id("rs_")
                items.append({"type": "reasoning", "id": rid, "summary": summary, "encrypted_content": p.signature})
        flush()
    return items


def _web_search_out(ws: WebSearch) -> dict[str, Any]:
    if ws.blocked_domains:
        raise Untranslatable("web_search.blocked_domains has no equivalent in the Responses web_search tool")
    tool: dict[str, Any] = {"type": "web_search"}
    if ws.allowed_domains:
        tool["filters"] = {"allowed_domains": ws.allowed_domains}
    if ws.user_location:
        tool["user_location"] = ws.user_location
    return tool


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a stateless Responses body (`store: false`, full history, encrypted reasoning replayed)."""
    body: dict[str, Any] = {"model": req.model, "input": _items_out(req)}
    if req.system:
        body["instructions"] = "\n\n".join(p.text for p in req.system)
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "parameters": object_root(t.parameters),
        }
        for t in req.tools
    ]
    if req.web_search is not None:
        tools.append(_web_search_out(req.web_search))
    if tools:
        body["tools"] = tools
        if req.tool_choice is not None:
            tc = req.tool_choice
            body["tool_choice"] = tc.mode if tc.mode != "tool" else {"type": "function", "name": tc.name}
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    rf = req.response_format
    if rf is not None and rf.kind != "text":
        if rf.kind == "json_schema":
            fmt: dict[str, Any] = {"type": "json_schema", "name": rf.name or "response", "schema": rf.schema or {}}
            if rf.description:
                fmt["description"] = rf.description
            if rf.strict is not None:
                fmt["strict"] = rf.strict
        else:
            fmt = {"type": "json_object"}
        body["text"] = {"format": fmt}
    r = req.reasoning
    if r is not None:
        effort = "none" if is_off(r) else effort_for(r)
        reasoning: dict[str, Any] = {}
        if effort:
            reasoning["effort"] = effort
        if effort != "none" and (r.summary or r.include_thoughts):
            reasoning["summary"] = r.summary or "auto"
        if reasoning:
            body["reasoning"] = reasoning
        if effort != "none":
            body["include"] = ["reasoning.encrypted_content"]
    body["store"] = False  # the proxy always sends the full history
    if req.cache_key:
        body["prompt_cache_key"] = req.cache_key
    if req.stream:
        body["stream"] = True
    if req.user and len(req.user) <= ir.OPENAI_USER_MAX:
        body["user"] = req.user
    return body


def set_reasoning(body: dict[str, Any], r: Reasoning, model: str) -> None:
    """Same-dialect requests: put a model-suffix reasoning setting into a Responses body."""
    effort = "none" if is_off(r) else effort_for(r)
    if effort:
        current = body.get("reasoning")
        body["reasoning"] = {**(current if isinstance(current, dict) else {}), "effort": effort}
