"""What each real API refuses: the request validation the fake upstreams run before answering.

Each `*_problem(body)` returns the reason the real API would answer 400 (worded like the real
message where it is known), or None when the real API would accept the request. Only rules the
providers document (or state in their 400 answers) are here, so a translated request that a real
upstream would refuse or misread fails the test that sent it:

- Anthropic Messages: `messages` holds only `user` and `assistant` turns (the system prompt is the
  top-level `system`); every turn but a final assistant one has content; text blocks are not
  empty; each block type is one the role may send; tool_use ids match `^[a-zA-Z0-9_-]+$`; every
  tool_use is answered by a tool_result in the very next user turn, and those tool_results come
  before any other block of that turn; tool names match `^[a-zA-Z0-9_-]{1,128}$` and are unique;
  a tool's `input_schema` has `type: object` at its root and no root `oneOf`/`anyOf`/`allOf`;
  images are jpeg/png/gif/webp; documents are PDF (base64 or URL), plain text, content or a file;
  inline data is standard base64 (as it is for OpenAI's inline files and audio);
  `tool_choice` only comes with tools; `max_tokens` is required; no sampling temperature while
  thinking.
- OpenAI Chat Completions: known roles; an assistant turn has content or tool calls; tool messages
  answer a pending call of the assistant turn right before them, and every call is answered before
  the conversation goes on; tool call ids are at most 40 characters; a tool message's content is
  text only; user content parts are text, image_url (detail auto/low/high), input_audio (wav/mp3)
  or file; function names match `^[a-zA-Z0-9_-]{1,64}$`; parameters are an object schema without
  a root combinator; `tool_choice` only with tools; `stream_options` only when streaming.
- OpenAI Responses: message content parts fit the role (input_text/input_image/input_file for
  user, system and developer; output_text/refusal for assistant); a message has content and an
  output_text is not empty; every function_call_output answers an earlier function_call; names
  and parameters as for chat (Codex itself sends `tool_choice: auto` with no tools, and the real
  API serves it).
- Gemini generateContent: `contents` is not empty; roles are `user` and `model`; every content has
  parts; a part carries exactly one kind of data (text, inlineData, fileData, functionCall,
  functionResponse, ...) or is a bare thought signature, and text is not empty unless it carries a
  thought signature; inline data
  has a MIME type and data; a function response turn answers the calls of the model turn before it
  one by one, in order; function names start with a letter or underscore and use letters, digits,
  `_ . : -`, at most 64 characters; parameters are an OBJECT schema; `toolConfig` only with
  function declarations.
"""

from __future__ import annotations

import re
from typing import Any

ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")
ANTHROPIC_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
OPENAI_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
GEMINI_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")
CLAUDE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
CLAUDE_BLOCKS = {
    "user": frozenset({"text", "image", "document", "tool_result", "search_result"}),
    "assistant": frozenset(
        {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"}
    ),
    "system": frozenset({"text"}),  # mid-conversation system turns (see `_system_turns_allowed`)
}
CLAUDE_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result"})
COMBINATORS = ("oneOf", "anyOf", "allOf")
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")  # standard base64: Anthropic and OpenAI refuse the URL-safe kind
GEMINI_DATA = (
    ("text",),
    ("inlineData", "inline_data"),
    ("fileData", "file_data"),
    ("functionCall", "function_call"),
    ("functionResponse", "function_response"),
    ("executableCode", "executable_code"),
    ("codeExecutionResult", "code_execution_result"),
)


def _object_root(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"{where}.type: Input should be 'object'"
    if any(k in schema for k in COMBINATORS):
        return f"{where}: input_schema does not support oneOf, allOf, or anyOf at the top level"
    return None


# ---- Anthropic Messages --------------------------------------------------------------------------


def _claude_source(block: dict[str, Any], where: str) -> str | None:
    src = block.get("source")
    if not isinstance(src, dict):
        return f"{where}.source: Field required"
    kind = src.get("type")
    if block["type"] == "image":
        if kind == "base64":
            if src.get("media_type") not in CLAUDE_IMAGE_TYPES:
                allowed = "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                return f"{where}.source.base64.media_type: Input should be {allowed}"
            data = src.get("data")
            if not isinstance(data, str) or not data or not BASE64.fullmatch(data):
                return f"{where}.source.data: The image data is not valid base64"
            return None
        if kind in ("url", "file"):
            return None
        return f"{where}.source: Input tag '{kind}' does not match any of the expected tags"
    if kind == "base64":
        if src.get("media_type") != "application/pdf":
            return f"{where}.source.base64.media_type: Input should be 'application/pdf'"
        if not BASE64.fullmatch(str(src.get("data") or "")):
            return f"{where}.source.data: The PDF data is not valid base64"
        return None
    if kind == "text":
        return (
            None
            if src.get("media_type") == "text/plain"
            else f"{where}.source.text.media_type: Input should be 'text/plain'"
        )
    if kind in ("url", "content", "file"):
        return None
    return f"{where}.source: Input tag '{kind}' does not match any of the expected tags"


def _claude_block(block: Any, role: str, where: str) -> str | None:
    if not isinstance(block, dict):
        return f"{where}: Input should be a valid dictionary"
    kind = block.get("type")
    if kind not in CLAUDE_BLOCKS[role]:
        return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        return f"{where}: text content blocks must be non-empty"
    if kind in ("image", "document"):
        return _claude_source(block, where)
    if kind == "tool_use":
        if not ANTHROPIC_ID.fullmatch(str(block.get("id") or "")):
            return f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if not ANTHROPIC_TOOL_NAME.fullmatch(str(block.get("name") or "")):
            return f"{where}.tool_use.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
    if kind == "tool_result":
        if not ANTHROPIC_ID.fullmatch(str(block.get("tool_use_id") or "")):
            return f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        content = block.get("content")
        if isinstance(content, list):
            for j, inner in enumerate(content):
                if not isinstance(inner, dict) or inner.get("type") not in CLAUDE_RESULT_BLOCKS:
                    return f"{where}.content.{j}: Input tag found using 'type' does not match any of the expected tags"
                problem = _claude_block(inner, "user", f"{where}.content.{j}")
                if problem:
                    return problem
        elif content is not None and not isinstance(content, str):
            return f"{where}.content: Input should be a valid string or list"
    return None


def _claude_tool_pairs(messages: list[Any]) -> str | None:
    for i, m in enumerate(messages):
        content = m.get("content")
        blocks = content if isinstance(content, list) else []
        if m.get("role") == "user":
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            if results:
                first_other = next((j for j, b in enumerate(blocks) if b.get("type") != "tool_result"), len(blocks))
                if any(b.get("type") == "tool_result" for b in blocks[first_other:]):
                    return f"messages.{i}: tool_result blocks must come first in the content, before any other block"
                prev = messages[i - 1] if i else {}
                prev_blocks = prev.get("content") if isinstance(prev.get("content"), list) else []
                calls = {b.get("id") for b in prev_blocks if b.get("type") == "tool_use"}
                stray = [r for r in results if r not in calls]
                if prev.get("role") != "assistant" or stray:
                    return (
                        f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{', '.join(map(str, stray or results))}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
        if m.get("role") == "assistant" and i + 1 < len(messages):
            calls_here = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
            nxt = messages[i + 1]
            nxt_blocks = nxt.get("content") if isinstance(nxt.get("content"), list) else []
            answered = {b.get("tool_use_id") for b in nxt_blocks if b.get("type") == "tool_result"}
            missing = [c for c in calls_here if c not in answered]
            if missing:
                return (
                    f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(map(str, missing))}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
    return None


MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"


def _system_turns_allowed(body: dict[str, Any], beta: str) -> bool:
    """Mid-conversation `system` turns: Claude Code sends them (its requests open `system` with the
    billing block), and the API takes them under their beta flag."""
    if MID_CONVERSATION_SYSTEM_BETA in beta:
        return True
    system = body.get("system")
    first = system[0] if isinstance(system, list) and system else None
    return isinstance(first, dict) and str(first.get("text", "")).startswith("x-anthropic-billing-header:")


def claude_problem(body: Any, beta: str = "") -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON body"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system" and not _system_turns_allowed(body, beta):
            return (
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant", "system"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if not content and not final_assistant:
            return (
                f"messages.{i}: all messages must have non-empty content except for the optional final "
                "assistant message"
            )
        if isinstance(content, list):
            for j, block in enumerate(content):
                problem = _claude_block(block, role, f"messages.{i}.content.{j}")
                if problem:
                    return problem
        elif not isinstance(content, str):
            return f"messages.{i}.content: Input should be a valid string or list"
    problem = _claude_tool_pairs(messages)
    if problem:
        return problem
    system = body.get("system")
    if isinstance(system, list):
        for j, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text"):
                return f"system.{j}: system blocks must be non-empty text blocks"
    elif system is not None and not isinstance(system, str):
        return "system: Input should be a valid string or list"
    tools = body.get("tools") or []
    names: set[str] = set()
    for j, tool in enumerate(tools):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            continue  # server tools (web_search_…, bash_…) have their own fixed shapes
        name = tool.get("name")
        if not ANTHROPIC_TOOL_NAME.fullmatch(str(name or "")):
            return f"tools.{j}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if name in names:
            return "tools: Tool names must be unique."
        names.add(name)
        problem = _object_root(tool.get("input_schema"), f"tools.{j}.custom.input_schema")
        if problem:
            return problem
    choice = body.get("tool_choice")
    if choice is not None:
        if not tools:
            return "tool_choice: tool_choice may only be specified while providing tools"
        if choice.get("type") == "tool" and choice.get("name") not in names:
            return f"tool_choice.name: tool '{choice.get('name')}' not found in tools"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" and body.get("temperature") not in (None, 1):
        return "temperature may only be set to 1 when thinking is enabled"
    return None


# ---- OpenAI (chat and Responses share their tool rules) -----------------------------------------


def _openai_function(name: Any, parameters: Any, where: str) -> str | None:
    if not OPENAI_NAME.fullmatch(str(name or "")):
        return (
            f"Invalid '{where}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]{1,64}$'."
        )
    if parameters is not None:
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            return f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'."
        if any(k in parameters for k in COMBINATORS):
            return (
                f"Invalid schema for function '{name}': 'oneOf', 'anyOf' and 'allOf' are not permitted at "
                "the top level."
            )
    return None


def _chat_part(part: Any, role: str, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"Invalid type for '{where}': expected an object."
    kind = part.get("type")
    allowed = {
        "user": ("text", "image_url", "input_audio", "file"),
        "assistant": ("text", "refusal"),
    }.get(role, ("text",))
    if kind not in allowed:
        return f"Invalid value: '{kind}'. Supported values are: {', '.join(repr(a) for a in allowed)}."
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            return f"Missing required parameter: '{where}.image_url.url'."
        if image.get("detail", "auto") not in ("auto", "low", "high"):
            return f"Invalid value: '{image.get('detail')}'. Supported values are: 'auto', 'low', and 'high'."
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        if audio.get("format") not in ("wav", "mp3") or not audio.get("data"):
            return f"Invalid value for '{where}.input_audio': expected data and a format of 'wav' or 'mp3'."
        if not BASE64.fullmatch(str(audio["data"])):
            return f"Invalid '{where}.input_audio.data': the audio data is not valid base64."
    if kind == "file":
        file = part.get("file") or {}
        if not (file.get("file_data") or file.get("file_id")):
            return f"Missing required parameter: '{where}.file.file_data' or '{where}.file.file_id'."
        if file.get("file_data") and not BASE64.fullmatch(str(file["file_data"]).split(",", 1)[-1]):
            return f"Invalid '{where}.file.file_data': the file data is not valid base64."
    return None


def chat_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON body"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1."
    pending: list[str] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        where = f"messages[{i}]"
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            return (
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'function'."
            )
        if role != "tool" and pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}"
            )
        content = m.get("content")
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'."
                )
            pending.remove(m["tool_call_id"])
        if role == "assistant":
            calls = m.get("tool_calls") or []
            if content is None and not calls:
                return f"Invalid value for '{where}.content': expected a string, got null."
            for j, call in enumerate(calls):
                cid = call.get("id")
                if not isinstance(cid, str) or len(cid) > 40:
                    return (
                        f"Invalid '{where}.tool_calls[{j}].id': string too long. Expected a string with "
                        "maximum length 40."
                    )
                fn = call.get("function") or {}
                problem = _openai_function(fn.get("name"), None, f"{where}.tool_calls[{j}].function")
                if problem:
                    return problem
                pending.append(cid)
        if isinstance(content, list):
            for j, part in enumerate(content):
                problem = _chat_part(part, role, f"{where}.content[{j}]")
                if problem:
                    return problem
        elif content is not None and not isinstance(content, str):
            return f"Invalid type for '{where}.content': expected one of a string or array of objects."
        elif content is None and role in ("user", "system", "developer", "tool"):
            return f"Invalid value for '{where}.content': expected a string, got null."
    tools = body.get("tools") or []
    for j, tool in enumerate(tools):
        fn = tool.get("function") or {}
        problem = _openai_function(fn.get("name"), fn.get("parameters"), f"tools[{j}].function")
        if problem:
            return problem
    if body.get("tool_choice") is not None and not tools:
        return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        name = (fmt.get("json_schema") or {}).get("name")
        if not OPENAI_NAME.fullmatch(str(name or "")):
            return "Invalid 'response_format.json_schema.name': string does not match pattern."
    return None


def _responses_part(part: Any, role: str, where: str) -> str | None:
    kind = part.get("type") if isinstance(part, dict) else None
    allowed = ("output_text", "refusal") if role == "assistant" else ("input_text", "input_image", "input_file")
    if kind not in allowed:
        return f"Invalid value: '{kind}'. Supported values are: {' and '.join(repr(a) for a in allowed)}."
    if kind == "output_text" and not part.get("text"):
        return f"Invalid '{where}.text': empty string. Expected a string with minimum length 1."
    if kind == "input_image":
        if not (part.get("image_url") or part.get("file_id")):
            return f"Missing required parameter: '{where}.image_url'."
        if part.get("detail", "auto") not in ("auto", "low", "high", "original"):
            return f"Invalid value: '{part.get('detail')}'. Supported values are: 'low', 'high', 'auto' and 'original'."
    if kind == "input_file" and not (part.get("file_data") or part.get("file_id") or part.get("file_url")):
        return f"Missing required parameter: '{where}.file_data', '{where}.file_id' or '{where}.file_url'."
    return None


def responses_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON body"
    items = body.get("input")
    calls: set[str] = set()
    for i, item in enumerate(items if isinstance(items, list) else []):
        kind = item.get("type") or "message"
        where = f"input[{i}]"
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                return f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'."
            content = item.get("content")
            if isinstance(content, list):
                if not content:
                    return f"Invalid '{where}.content': empty array. Expected an array with minimum length 1."
                for j, part in enumerate(content):
                    problem = _responses_part(part, role, f"{where}.content[{j}]")
                    if problem:
                        return problem
            elif not isinstance(content, str):
                return f"Missing required parameter: '{where}.content'."
        elif kind == "function_call":
            problem = _openai_function(item.get("name"), None, where)
            if problem:
                return problem
            calls.add(item.get("call_id"))
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                return f"No tool call found for function call output with call_id {item.get('call_id')}."
            output = item.get("output")
            if isinstance(output, list):
                for j, part in enumerate(output):
                    problem = _responses_part(part, "user", f"{where}.output[{j}]")
                    if problem:
                        return problem
            elif not isinstance(output, str):
                return f"Invalid type for '{where}.output': expected a string or an array."
    tools = body.get("tools") or []
    for j, tool in enumerate(tools):
        if tool.get("type") == "function":
            problem = _openai_function(tool.get("name"), tool.get("parameters"), f"tools[{j}]")
            if problem:
                return problem
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if (
        isinstance(fmt, dict)
        and fmt.get("type") == "json_schema"
        and not OPENAI_NAME.fullmatch(str(fmt.get("name") or ""))
    ):
        return "Invalid 'text.format.name': string does not match pattern."
    return None


# ---- Gemini generateContent ----------------------------------------------------------------------


def _g(d: dict[str, Any], camel: str, snake: str) -> Any:
    return d.get(camel, d.get(snake))


def _gemini_part(part: Any, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"{where}: must be an object"
    kinds = [names[0] for names in GEMINI_DATA if any(n in part for n in names)]
    if not kinds and _g(part, "thoughtSignature", "thought_signature"):
        return None
    if len(kinds) != 1:
        return f"{where}: required oneof field 'data' must have one initialized field"
    kind = kinds[0]
    if kind == "text":
        if not isinstance(part["text"], str):
            return f"{where}.text: must be a string"
        if not part["text"] and not _g(part, "thoughtSignature", "thought_signature"):
            return (
                "Unable to submit request because it has an empty text parameter. Add a value to the "
                "parameter and try again."
            )
    if kind == "inlineData":
        blob = _g(part, "inlineData", "inline_data") or {}
        if not _g(blob, "mimeType", "mime_type") or not blob.get("data"):
            return f"{where}.inline_data: mime_type and data are required"
    if kind == "fileData" and not _g(_g(part, "fileData", "file_data") or {}, "fileUri", "file_uri"):
        return f"{where}.file_data.file_uri: is required"
    if kind == "functionCall" and not (_g(part, "functionCall", "function_call") or {}).get("name"):
        return f"{where}.function_call.name: Name cannot be empty."
    if kind == "functionResponse":
        fr = _g(part, "functionResponse", "function_response") or {}
        if not fr.get("name") or not isinstance(fr.get("response"), dict):
            return f"{where}.function_response: name and a response object are required"
    return None


def _gemini_answers(contents: list[Any]) -> str | None:
    """A turn of function responses answers the calls of the model turn before it, one for one, in order."""
    for i, c in enumerate(contents):
        parts = c.get("parts") or []
        responses = [_g(p, "functionResponse", "function_response") for p in parts]
        responses = [r for r in responses if r is not None]
        if not responses:
            continue
        prev = contents[i - 1].get("parts") if i else []
        calls = [_g(p, "functionCall", "function_call") for p in prev or ()]
        calls = [fc for fc in calls if fc is not None]
        if len(responses) != len(calls):
            return (
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )
        if [r.get("name") for r in responses] != [fc.get("name") for fc in calls]:
            return f"contents[{i}]: function responses must answer the function calls in the order they were made"
    return None


def gemini_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, c in enumerate(contents):
        if c.get("role", "user") not in ("user", "model", "function"):
            return f"Please use a valid role: user, model. (contents[{i}].role)"
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            problem = _gemini_part(part, f"* GenerateContentRequest.contents[{i}].parts[{j}]")
            if problem:
                return problem
    problem = _gemini_answers(contents)
    if problem:
        return problem
    declarations = 0
    for t in body.get("tools") or []:
        for fd in _g(t, "functionDeclarations", "function_declarations") or []:
            declarations += 1
            if not GEMINI_NAME.fullmatch(str(fd.get("name") or "")):
                return (
                    f"* GenerateContentRequest.tools[0].function_declarations.name: Invalid function name "
                    f"'{fd.get('name')}'. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, "
                    "0-9), underscores (_), dots (.), colons (:) or dashes (-), with a maximum length of 64."
                )
            params = fd.get("parameters")
            if params is not None and str(params.get("type", "")).upper() != "OBJECT":
                return "* GenerateContentRequest.tools[0].function_declarations.parameters.type: must be OBJECT"
    config = _g(body, "toolConfig", "tool_config")
    if isinstance(config, dict) and _g(config, "functionCallingConfig", "function_calling_config") and not declarations:
        return "Function calling config is set without function_declarations."
    return None
