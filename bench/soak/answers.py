"""Reading what the proxy answered a soak client: the text of a whole answer or a stream, in each
dialect, and the verdict on an error (one the proxy may give while its upstreams misbehave, or a
failure of the soak).

The proxy may answer an error only as: 429 (credentials cooling down, or an upstream's 429 passed
on), its own 502 (upstream failed, garbage, bad framing) or 504 (upstream timed out), an upstream's
own 5xx passed on (the fakes mark theirs), or, once a stream has started, the dialect's in-band
error saying the upstream stream broke or went silent. A 500 is always a failure, and so is any
other error, an answer without its end, or an answer that is not the one the client asked for.
"""

from __future__ import annotations

import json
import re
from typing import Any

import wire

PROXY_STREAM_ERRORS = ("upstream stream went silent", "upstream stream broke", "upstream stream ended before")
# The proxy's own 502/504 messages for an upstream that failed, timed out, or answered garbage or
# broken framing; a 502 or 504 saying anything else is a failure (say, a valid answer it could not
# translate).
PROXY_ERRORS = (
    "upstream request failed",  # no usable answer head: refused, cut, timed out, malformed
    "upstream body failed",  # the body broke off, timed out or was malformed
    "upstream stream failed",
    "upstream answered a stream with",  # a stream answered as something else than SSE
    "a body that is not a JSON object",  # an HTML page, cut JSON
    "upstream closed the stream before any data",
    "upstream stream sent no event",
    *PROXY_STREAM_ERRORS,
)
_NUMBERS = re.compile(r"\d+(\.\d+)?")
_TAGS = re.compile(r"soak-tag-[0-9a-z]+|tag [0-9a-z]+")


def shorten(text: str) -> str:
    """A message reduced to its kind: numbers and tags out, at most 100 characters."""
    return _NUMBERS.sub("N", _TAGS.sub("TAG", " ".join(text.split())))[:100]


def judge(status: int, text: str, *, in_band: bool = False) -> tuple[str, str]:
    """`("error", label)` for an error the proxy may give under upstream faults, else `("FAIL", why)`."""
    if in_band:
        if any(marker in text for marker in PROXY_STREAM_ERRORS):
            return "error", f"in-band: {shorten(text)}"
        return "FAIL", f"unexpected in-band error: {shorten(text)}"
    label = f"{status}: {shorten(text)}"
    if status == 429:
        return "error", label
    if status in (502, 504) and any(marker in text for marker in PROXY_ERRORS):
        return "error", label
    if 500 < status < 600 and wire.OVERLOADED in text:
        return "error", f"{status}: upstream's own, passed on"
    return "FAIL", f"HTTP {label}"


def check_text(text: str, tag: str) -> tuple[str, str]:
    """An answer's text must be this request's own answer and never a fault's body."""
    if wire.POISON in text:
        return "FAIL", "a fault's body reached the client as an answer"
    if f"tag {tag}:" not in text:
        return "FAIL", f"answer is not this request's: {text[:80]!r}"
    return "ok", ""


def error_text(body: bytes) -> str:
    """The message of an error body in any dialect (the whole body when it has none)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace")
    if isinstance(obj, list) and obj:
        obj = obj[0]
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(obj, dict) and isinstance(obj.get("message"), str):
        return obj["message"]
    return body[:300].decode("utf-8", "replace")


def whole_text(dialect: str, obj: Any) -> str:
    """The text of a whole answer (raises on a shape that is not the dialect's)."""
    if dialect == "chat":
        return str(obj["choices"][0]["message"]["content"])
    if dialect == "responses":
        return "".join(
            part.get("text", "") for item in obj["output"] if item.get("type") == "message" for part in item["content"]
        )
    if dialect == "claude":
        return "".join(block.get("text", "") for block in obj["content"])
    return "".join(part.get("text", "") for part in obj["candidates"][0]["content"]["parts"])


class StreamReader:
    """Follows one SSE stream of a dialect: its text, whether it ended properly, an in-band error."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.text = ""
        self.done = False
        self.error: str | None = None
        self._event = ""
        self._data: list[str] = []

    def line(self, raw: str) -> None:
        """Feed one line (without its line break)."""
        if not raw:
            if self._data:
                self.event(self._event, "\n".join(self._data))
            self._event, self._data = "", []
        elif raw.startswith("event:"):
            self._event = raw[6:].strip()
        elif raw.startswith("data:"):
            self._data.append(raw[5:].strip())

    def finish(self) -> None:
        self.line("")

    def event(self, name: str, data: str) -> None:
        if data == "[DONE]":
            self.done = True
            return
        obj = json.loads(data)
        if name == "error" or (isinstance(obj, dict) and ("error" in obj or obj.get("type") == "error")):
            self.error = error_text(data.encode()) or data
            return
        dialect = self.dialect
        kind = obj.get("type")
        if dialect == "chat":
            for choice in obj.get("choices") or []:
                self.text += (choice.get("delta") or {}).get("content") or ""
        elif dialect == "responses":
            if kind == "response.output_text.delta":
                self.text += obj["delta"]
            elif kind == "response.completed":
                self.done = True
            elif kind == "response.failed":
                self.error = str(((obj.get("response") or {}).get("error") or {}).get("message"))
        elif dialect == "claude":
            if kind == "content_block_delta":
                self.text += obj["delta"].get("text", "")
            elif kind == "message_stop":
                self.done = True
        else:
            for cand in obj.get("candidates") or []:
                for part in (cand.get("content") or {}).get("parts") or []:
                    self.text += part.get("text", "")
                if cand.get("finishReason"):
                    self.done = True
