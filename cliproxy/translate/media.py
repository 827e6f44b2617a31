"""Documents, audio and video across dialects: what a media type is, and what replaces a part the
target cannot take.

Each wire accepts its own set: Gemini takes any MIME type inline or by URI; Claude takes PDF and
plain-text documents and four image types; chat takes PDF files and wav/mp3 audio; Responses takes
files and images but no audio. A part the target cannot read is never sent under another label
(audio is never an image): it becomes a short text marker saying what was left out, so the model
knows something was there and the request stays valid.
"""

from __future__ import annotations

import base64
import binascii

from cliproxy.translate.ir import FilePart, ImagePart, TextPart

AUDIO_MEDIA = {"wav": "audio/wav", "mp3": "audio/mpeg"}  # chat `input_audio.format` → MIME type
_AUDIO_FORMAT = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}
_EXTENSION = {"application/pdf": "pdf", "text/plain": "txt"}


def kind_of(media_type: str | None) -> str:
    """`image`, `audio`, `video`, `pdf`, `text` or `document` (anything else: a file to read)."""
    media = (media_type or "").lower()
    head = media.partition("/")[0]
    if head in ("image", "audio", "video"):
        return head
    if media == "application/pdf":
        return "pdf"
    if media == "text/plain":
        return "text"
    return "document"


def audio_format(media_type: str | None) -> str | None:
    """Chat's `input_audio.format` for a MIME type (wav and mp3 only), or None."""
    return _AUDIO_FORMAT.get((media_type or "").lower())


def data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def split_data_url(value: str) -> tuple[str | None, str] | None:
    """(MIME type, base64 data) of a `data:` URL, or None for anything else."""
    if not value.startswith("data:"):
        return None
    head, _, data = value.partition(",")
    return head[5:].split(";", 1)[0] or None, data


def filename_for(part: FilePart) -> str:
    """The part's own file name, or one made from its media type (OpenAI wants a name with inline files)."""
    if part.filename:
        return part.filename
    return "document." + _EXTENSION.get((part.media_type or "").lower(), "bin")


def decoded_text(part: FilePart) -> str | None:
    """The text of an inline plain-text document, or None when it is not one (or not valid UTF-8)."""
    if part.data is None or kind_of(part.media_type) != "text":
        return None
    try:
        return base64.b64decode(part.data, validate=False).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def encoded_text(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def omitted(part: ImagePart | FilePart, target: str) -> TextPart:
    """The marker for a part `target` cannot take: its media type, and its name or URL when known."""
    media = part.media_type or "file"
    where = part.filename if isinstance(part, FilePart) and part.filename else part.url
    label = f"{media} {where}" if where else media
    return TextPart(f"[{label} omitted: the {target} API cannot take this attachment]")
