"""Chat Completions requests ⇄ IR: messages, tools, response formats, reasoning effort.

Chat's tool messages hold text only: the images and files a tool returned go into a user message
right after the tool messages of that turn (every call must be answered before anything else
follows). Chat has no provider-run web search: a request whose only tool is web search is refused
rather than answered without searching; offered among other tools, it is left out.
"""

from __future__ import annotations

from typing import Any

from cliproxy import jsonio
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
)
from cliproxy.translate.media import (
    AUDIO_MEDIA,
    audio_format,
    data_url,
    decoded_text,
    filename_for,
    kind_of,
    omitted,
    split_data_url,
)
from cliproxy.translate.reasoning import effort_for, is_off
from cliproxy.translate.tool_schema import object_root


def _file_in(file: Any) -> FilePart | None:
    if not isinstance(file, dict):
        return None
    name = file.get("filename")
    raw = file.get("file_data")
    if isinstance(raw, str) and raw:
        parsed = split_data_url(raw)
        media, data = parsed if parsed is not None else (None, raw)
        if media is None:
            media = "application/pdf" if not name or str(name).lower().endswith(".pdf") else None
        return FilePart(media, data, filename=name)
    if file.get("file_id"):
        return FilePart(None, file_id=file["file_id"], family="openai", filename=name)
    if file.get("file_url"):  # not OpenAI's own, but some compatible providers take it
        return FilePart("application/pdf", url=file["file_url"], filename=name)
    return None


def content_parts(content: Any) -> list[Media]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[Media] = []
    if isinstance(content, list):
        for p in content:
            if not isinstance(p, dict):
                continue
            kind = p.get("type")
            if kind in ("text", "input_text", "output_text"):
                out.append(TextPart(p.get("text") or "", "cache_control" in p))
            elif kind == "image_url":
                image = p.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if isinstance(url, str):
                    part = ImagePart.from_url(url)
                    if isinstance(image, dict) and isinstance(image.get("detail"), str):
                        part.detail = image["detail"]
                    part.cache = "cache_control" in p
                    out.append(part)
            elif kind == "input_audio":
                audio = p.get("input_audio") or {}
                if isinstance(audio, dict) and audio.get("data"):
                    fmt = str(audio.get("format") or "wav")
                    out.append(FilePart(AUDIO_MEDIA.get(fmt, "audio/" + fmt), audio["data"]))
            elif kind == "file":
                file = _file_in(p.get("file"))
                if file is not None:
                    out.append(file)
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
        if "cache_control" in m and isinstance(content, str):  # a breakpoint on a whole string message
            content = [{"type": "text", "text": content, "cache_control": m["cache_control"]}]
        if role in ("system", "developer"):
            texts = [p for p in content_parts(content) if isinstance(p, TextPart)]
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
            req.tools.append(
                Tool(fn.get("name") or "", fn.get("description"), fn.get("parameters") or {}, "cache_control" in t)
            )
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
            req.response_format = ResponseFormat(
                "json_schema", js.get("schema"), js.get("name"), js.get("strict"), js.get("description")
            )
        elif kind == "json_object":
            req.response_format = ResponseFormat("json_object")
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        req.reasoning = Reasoning(effort=effort)
    req.stream = bool(body.get("stream"))
    req.user = body.get("user")
    md = body.get("metadata")
    req.metadata = md if isinstance(md, dict) else None
    key = body.get("prompt_cache_key")
    req.cache_key = key if isinstance(key, str) and key else None
    return req


def _media_out(p: ImagePart | FilePart) -> dict[str, Any]:
    """A chat content part; what chat cannot take (video, other audio, links to files) becomes a marker."""
    if isinstance(p, ImagePart):
        image: dict[str, Any] = {"url": p.as_url()}
        if p.detail:
            image["detail"] = "high" if p.detail == "original" else p.detail  # chat has no `original`
        return {"type": "image_url", "image_url": image}
    kind = kind_of(p.media_type)
    if kind == "audio" and p.data is not None and (fmt := audio_format(p.media_type)) is not None:
        return {"type": "input_audio", "input_audio": {"data": p.data, "format": fmt}}
    if kind == "text" and (text := decoded_text(p)) is not None:
        return {"type": "text", "text": text}
    if kind in ("pdf", "document"):
        if p.data is not None:
            return {"type": "file", "file": {"file_data": data_url(p.media_type, p.data), "filename": filename_for(p)}}
        if p.file_id and p.family == "openai":
            return {"type": "file", "file": {"file_id": p.file_id}}
    return {"type": "text", "text": omitted(p, "Chat Completions").text}


def _content_out(parts: list[Media]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return [{"type": "text", "text": p.text} if isinstance(p, TextPart) else _media_out(p) for p in parts]


def _tool_out(p: ToolResultPart, beside: list[Media]) -> dict[str, Any]:
    """A tool message (text only); the result's images and files go to `beside`, sent right after."""
    text = ir.text_of(p.content)
    media = [c for c in p.content if not isinstance(c, TextPart)]
    if media:
        beside.append(TextPart(f"[attachments returned by tool call {p.call_id}]"))
        beside.extend(media)
        if not text:
            text = f"[{len(media)} attachment(s), sent in the next message]"
    return {"role": "tool", "tool_call_id": ir.short_id(p.call_id), "content": text}


def _assistant_out(m: Message) -> dict[str, Any] | None:
    text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
    calls = [
        {
            "id": ir.short_id(p.id),
            "type": "function",
            "function": {"name": p.name, "arguments": p.arguments or "{}"},
        }
        for p in m.parts
        if isinstance(p, ToolCallPart)
    ]
    if not text and not calls:  # e.g. a turn that only held thinking, which chat cannot replay
        return None
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _messages_out(req: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": "\n\n".join(p.text for p in req.system)})
    for m in req.messages:
        if m.role == "system":
            messages.append({"role": "system", "content": "".join(p.text for p in m.parts if isinstance(p, TextPart))})
        elif m.role == "assistant":
            msg = _assistant_out(m)
            if msg is not None:
                messages.append(msg)
        else:
            rest: list[Media] = []
            beside: list[Media] = []
            for p in m.parts:
                if isinstance(p, ToolResultPart):
                    messages.append(_tool_out(p, beside))
                elif isinstance(p, TextPart | ImagePart | FilePart):
                    rest.append(p)
            if beside or rest:
                messages.append({"role": "user", "content": _content_out(beside + rest)})
    return messages


def encode_request(req: Request) -> dict[str, Any]:
    """IR as a chat body; tool results become `tool` messages, thinking history is dropped (chat cannot replay it)."""
    if req.web_search is not None and not req.tools:  # a search request; with other tools it is one option dropped
        raise Untranslatable("web search is not available on a Chat Completions upstream")
    body: dict[str, Any] = {"model": req.model, "messages": _messages_out(req)}
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": object_root(t.parameters),
                },
            }
            for t in req.tools
        ]
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.tool_choice is not None:  # chat refuses a tool_choice without tools
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
            if rf.description:
                js["description"] = rf.description
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
