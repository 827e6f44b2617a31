"""Anthropic content blocks ⇄ IR parts: text, images, documents, tool use and results, thinking.

Claude checks more than the other wires: tool ids match `^[a-zA-Z0-9_-]+$`, text blocks are never
empty, images are jpeg/png/gif/webp, documents are PDF (inline or by URL) or plain text, and the
tool_result blocks of a user turn come before anything else in it. Ids from other providers (Kimi's
`functions.get_weather:0`) are rewritten by a function of the id alone, so a call and its result,
and every later turn that re-sends them, get the same rewritten id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import ir
from cliproxy.translate.ir import FilePart, ImagePart, Media, Part, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from cliproxy.translate.media import decoded_text, encoded_text, kind_of, omitted
from cliproxy.translate.signatures import unwrap

EPHEMERAL = {"type": "ephemeral"}
_ID = re.compile(r"[a-zA-Z0-9_-]+")
_NOT_ID = re.compile(r"[^a-zA-Z0-9_-]")
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def claude_id(value: str) -> str:
    """`value` when Claude accepts it as a tool id, else a rewrite that depends only on `value`."""
    if _ID.fullmatch(value):
        return value
    return "toolu_" + _NOT_ID.sub("_", value)[:40] + "_" + hashlib.sha256(value.encode()).hexdigest()[:12]


def _image_in(block: dict[str, Any]) -> ImagePart | FilePart | None:
    src = block.get("source") or {}
    cache = "cache_control" in block
    kind = src.get("type")
    if kind == "base64":
        return ImagePart(data=src.get("data"), media_type=src.get("media_type"), cache=cache)
    if kind == "url":
        return ImagePart(url=src.get("url"), cache=cache)
    if kind == "file":
        return FilePart("image/*", file_id=src.get("file_id"), family="claude", cache=cache)
    return None


def _document_in(block: dict[str, Any]) -> list[Media]:
    src = block.get("source") or {}
    cache = "cache_control" in block
    name = block.get("title")
    kind = src.get("type")
    if kind == "base64":
        return [FilePart(src.get("media_type") or "application/pdf", src.get("data"), filename=name, cache=cache)]
    if kind == "text":
        return [FilePart("text/plain", encoded_text(str(src.get("data") or "")), filename=name, cache=cache)]
    if kind == "url":
        return [FilePart("application/pdf", url=src.get("url"), filename=name, cache=cache)]
    if kind == "file":
        return [FilePart(None, file_id=src.get("file_id"), family="claude", filename=name, cache=cache)]
    if kind == "content":  # a document made of blocks: its text and images are the content
        return result_content(src.get("content"))
    return []


def result_content(content: Any) -> list[Media]:
    if isinstance(content, str):
        return [TextPart(content)]
    out: list[Media] = []
    for b in content or ():
        kind = b.get("type")
        if kind == "text":
            out.append(TextPart(b.get("text") or ""))
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                out.append(img)
        elif kind == "document":
            out.extend(_document_in(b))
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
                    result_content(b.get("content")),
                    bool(b.get("is_error")),
                    cache="cache_control" in b,
                )
            )
        elif kind == "image":
            img = _image_in(b)
            if img is not None:
                parts.append(img)
        elif kind == "document":
            parts.extend(_document_in(b))
        elif kind == "thinking":
            family, sig = unwrap(b.get("signature") or None, native="claude")
            parts.append(ThinkingPart(b.get("thinking") or "", sig, family))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart("", b.get("data"), "claude", redacted=True))
    return parts


def text_out(p: TextPart) -> dict[str, Any]:
    if p.cache:
        return {"type": "text", "text": p.text, "cache_control": EPHEMERAL}
    return {"type": "text", "text": p.text}


def _cached(block: dict[str, Any], cache: bool) -> dict[str, Any]:
    if cache:
        block["cache_control"] = EPHEMERAL
    return block


def media_out(p: ImagePart | FilePart) -> dict[str, Any]:
    """An image or document block, or the text marker for what Claude cannot read (audio, video, …)."""
    if isinstance(p, ImagePart):
        if p.data is not None:
            media = p.media_type or "image/png"
            if media not in _IMAGE_TYPES:
                return text_out(omitted(p, "Claude"))
            src: dict[str, Any] = {"type": "base64", "media_type": media, "data": p.data}
        else:
            src = {"type": "url", "url": p.url or ""}
        return _cached({"type": "image", "source": src}, p.cache)
    kind = kind_of(p.media_type)
    doc: dict[str, Any] | None = None
    if p.file_id and p.family == "claude":
        block_type = "image" if kind == "image" else "document"
        doc = {"type": block_type, "source": {"type": "file", "file_id": p.file_id}}
    elif kind == "pdf" and p.data is not None:
        doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": p.data}}
    elif kind == "pdf" and p.url:
        doc = {"type": "document", "source": {"type": "url", "url": p.url}}
    elif kind == "text" and (text := decoded_text(p)) is not None:
        doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}}
    elif kind == "image" and p.data is not None and p.media_type in _IMAGE_TYPES:
        doc = {"type": "image", "source": {"type": "base64", "media_type": p.media_type, "data": p.data}}
    if doc is None:
        return text_out(omitted(p, "Claude"))
    if p.filename and doc["type"] == "document":
        doc["title"] = p.filename
    return _cached(doc, p.cache)


def _result_out(p: ToolResultPart) -> dict[str, Any]:
    content: Any
    if all(isinstance(c, TextPart) for c in p.content):
        content = ir.text_of(p.content)
    else:
        content = [text_out(c) if isinstance(c, TextPart) else media_out(c) for c in p.content]
        content = [c for c in content if c["type"] != "text" or c["text"]]
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": claude_id(p.call_id), "content": content}
    if p.is_error:
        block["is_error"] = True
    return _cached(block, p.cache)


def blocks_out(parts: list[Part]) -> list[dict[str, Any]]:
    """The blocks of one turn; in a user turn the tool results come first, as Claude requires."""
    out: list[dict[str, Any]] = []
    results = 0
    for p in parts:
        if isinstance(p, TextPart):
            if p.text:  # Claude rejects empty text blocks
                out.append(text_out(p))
        elif isinstance(p, ToolCallPart):
            try:
                args = jsonio.loads(p.arguments) if p.arguments else {}
            except ValueError:
                args = {}
            call = {"type": "tool_use", "id": claude_id(p.id), "name": p.name}
            out.append({**call, "input": args if isinstance(args, dict) else {}})
        elif isinstance(p, ToolResultPart):
            out.insert(results, _result_out(p))
            results += 1
        elif isinstance(p, ImagePart | FilePart):
            out.append(media_out(p))
        elif isinstance(p, ThinkingPart) and p.family == "claude" and p.signature:
            if p.redacted:
                out.append({"type": "redacted_thinking", "data": p.signature})
            else:
                out.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
    return out
