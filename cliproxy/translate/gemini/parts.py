"""Gemini `contents` and parts ⇄ IR: text, inline and file data by MIME type, calls and responses.

Gemini has no tool-call ids: the decoder synthesises `call_<hex>` ids and pairs each
`functionResponse` with the oldest unanswered call of the same name. On the way up, the responses of
a turn are put in the order of the calls they answer (Gemini pairs them by position), and the images
or files a tool returned travel as inline data right after the responses. Any MIME type can go as
inline data or a file URI; only a file id from another provider's store cannot.
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
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from cliproxy.translate.media import omitted

# Gemini 3 rejects replayed function calls without a thought signature; this documented value tells
# it to skip the check for history that came from another model family.
SKIP_SIGNATURE = "skip_thought_signature_validator"
# google-genai sends inline bytes as URL-safe base64, which Gemini reads and the other APIs refuse.
_STANDARD_BASE64 = str.maketrans("-_", "+/")


def get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """google-genai sends snake_case keys in places (thinkingConfig); accept both spellings."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


class CallIds:
    """Synthesised ids for id-less function calls, matched to responses by name, first in first out."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, list[str]] = {}

    def call(self, name: str, given: str | None) -> str:
        cid = given or ir.new_id("call_")
        self._pending.setdefault(name, []).append(cid)
        return cid

    def result(self, name: str, given: str | None) -> str:
        queue = self._pending.get(name)
        if given:
            if queue and given in queue:
                queue.remove(given)
            return given
        return queue.pop(0) if queue else ir.new_id("call_")


def _blob_in(blob: dict[str, Any], *, inline: bool) -> ImagePart | FilePart:
    media = get(blob, "mimeType", "mime_type")
    if inline:
        data = blob.get("data")
        if isinstance(data, str) and ("-" in data or "_" in data):
            data = data.translate(_STANDARD_BASE64)
        if isinstance(media, str) and media.startswith("image/"):
            return ImagePart(data=data, media_type=media)
        return FilePart(media, data)
    uri = get(blob, "fileUri", "file_uri")
    if media is None or (isinstance(media, str) and media.startswith("image/")):
        return ImagePart(url=uri, media_type=media)
    return FilePart(media, url=uri)


def _response_in(fr: dict[str, Any], ids: CallIds) -> ToolResultPart:
    name = fr.get("name") or ""
    resp = fr.get("response")
    if isinstance(resp, dict) and set(resp) <= {"content", "result", "output"} and len(resp) == 1:
        value = next(iter(resp.values()))
        text = value if isinstance(value, str) else jsonio.dumps(value).decode()
    else:
        text = jsonio.dumps(resp).decode() if resp is not None else ""
    content: list[Media] = [TextPart(text)]
    for inner in fr.get("parts") or ():  # Gemini 3's multimodal function responses
        blob = get(inner, "inlineData", "inline_data")
        if isinstance(blob, dict):
            content.append(_blob_in(blob, inline=True))
    error = isinstance(resp, dict) and set(resp) == {"error"}
    return ToolResultPart(ids.result(name, fr.get("id")), content, error, name=name)


def parts_in(raw: Any, ids: CallIds) -> list[Part]:
    parts: list[Part] = []
    for p in raw or ():
        sig = get(p, "thoughtSignature", "thought_signature")
        if "text" in p:
            if p.get("thought"):
                parts.append(ThinkingPart(p["text"] or "", sig, "gemini"))
            elif p["text"]:  # an empty text part only carries a signature: no text block for it
                parts.append(TextPart(p["text"]))
            continue
        fc = get(p, "functionCall", "function_call")
        if fc is not None:
            name = fc.get("name") or ""
            args = jsonio.dumps(fc.get("args") or {}).decode()
            parts.append(ToolCallPart(ids.call(name, fc.get("id")), name, args, sig, "gemini" if sig else None))
            continue
        fr = get(p, "functionResponse", "function_response")
        if fr is not None:
            parts.append(_response_in(fr, ids))
            continue
        inline = get(p, "inlineData", "inline_data")
        if inline is not None:
            parts.append(_blob_in(inline, inline=True))
            continue
        fd = get(p, "fileData", "file_data")
        if fd is not None:
            parts.append(_blob_in(fd, inline=False))
    return parts


def media_out(p: ImagePart | FilePart) -> dict[str, Any]:
    if p.data is not None:
        default = "image/png" if isinstance(p, ImagePart) else "application/octet-stream"
        return {"inlineData": {"mimeType": p.media_type or default, "data": p.data}}
    if p.url:
        media = p.media_type if p.media_type and p.media_type != "image/*" else None
        media = media or ("image/png" if isinstance(p, ImagePart) else "application/pdf")
        return {"fileData": {"mimeType": media, "fileUri": p.url}}
    return {"text": omitted(p, "Gemini").text}  # another provider's file id: Gemini cannot fetch it


def _call_out(p: ToolCallPart) -> dict[str, Any]:
    try:
        args = jsonio.loads(p.arguments) if p.arguments else {}
    except ValueError:
        args = {}
    sig = p.signature if p.family == "gemini" and p.signature else SKIP_SIGNATURE
    return {"functionCall": {"name": p.name, "args": args if isinstance(args, dict) else {}}, "thoughtSignature": sig}


def _results_out(results: list[ToolResultPart], calls: dict[str, tuple[int, str]]) -> list[dict[str, Any]]:
    """The responses in the order of the calls they answer, then what they returned besides text."""
    order = sorted(range(len(results)), key=lambda i: calls.get(results[i].call_id, (len(calls) + i, ""))[0])
    out: list[dict[str, Any]] = []
    beside: list[dict[str, Any]] = []
    for i in order:
        p = results[i]
        name = p.name or calls.get(p.call_id, (0, ""))[1] or "tool"
        key = "error" if p.is_error else "content"
        out.append({"functionResponse": {"name": name, "response": {key: ir.text_of(p.content)}}})
        beside.extend(media_out(c) for c in p.content if not isinstance(c, TextPart))
    return out + beside


def contents_out(messages: list[Message]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    calls: dict[str, tuple[int, str]] = {}  # call id → (position in its model turn, name)
    for m in messages:
        role = "model" if m.role == "assistant" else "user"
        parts: list[dict[str, Any]] = []
        results: list[ToolResultPart] = []
        for p in m.parts:
            if isinstance(p, TextPart):
                if p.text:
                    parts.append({"text": p.text})
            elif isinstance(p, ToolCallPart):
                calls[p.id] = (len(calls), p.name)
                parts.append(_call_out(p))
            elif isinstance(p, ToolResultPart):
                results.append(p)
            elif isinstance(p, ImagePart | FilePart):
                parts.append(media_out(p))
            elif isinstance(p, ThinkingPart) and p.family == "gemini" and p.signature and not p.redacted:
                parts.append({"text": p.text, "thought": True, "thoughtSignature": p.signature})
        if results:
            parts[:0] = _results_out(results, calls)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents
