"""The neutral representation every codec decodes into and encodes from.

One hub instead of N×N pair translators: each dialect only knows how to map itself to these types.
Conventions that every codec follows:
- `Usage.input_tokens` counts the whole prompt, cached and cache-creation tokens included (the OpenAI
  convention), and Gemini's tool-use prompt too; `output_tokens` includes reasoning tokens. Codecs
  whose wire splits them (Claude, Gemini) add or subtract on the way in and out.
- Tool results live in `user` messages (as Claude puts them); a `system` message inside `messages`
  is a mid-conversation system entry (leading ones go to `Request.system`).
- Tool-call arguments are always a JSON *string*, as streamed; codecs that need an object parse it.
- Stream block indexes are the decoder's own, increasing from 0; encoders map them to their wire.
- Prompt caching: a part's `cache` is a breakpoint (Claude's `cache_control`, which the OpenAI
  dialects accept on content parts and tools as gateways do); `Request.cache_key` is OpenAI's
  `prompt_cache_key`. An encoder whose wire has only one of them derives it from the other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["claude", "openai", "gemini"]
"""Who produced an opaque thinking signature; only the same family can verify it."""

StopReason = Literal["stop", "stop_sequence", "length", "tool_calls", "content_filter"]


@dataclass(slots=True)
class TextPart:
    text: str
    cache: bool = False  # an Anthropic `cache_control` mark on this block


@dataclass(slots=True)
class ImagePart:
    """An image given inline (`data`, base64) or by `url`; `detail` is OpenAI's resolution hint."""

    data: str | None = None
    url: str | None = None
    media_type: str | None = None
    cache: bool = False
    detail: str | None = None

    @classmethod
    def from_url(cls, url: str) -> ImagePart:
        """A `data:` URL becomes inline base64 (the form Claude and Gemini need); others stay URLs."""
        if url.startswith("data:"):
            head, _, data = url.partition(",")
            media = head[5:].split(";", 1)[0] or None
            return cls(data=data, media_type=media)
        return cls(url=url)

    def as_url(self) -> str:
        """The OpenAI form: the URL, or a `data:` URL for inline bytes."""
        if self.data is not None:
            return f"data:{self.media_type or 'image/png'};base64,{self.data}"
        return self.url or ""


@dataclass(slots=True)
class FilePart:
    """A document, audio or video clip: inline base64 `data`, a `url`, or a `file_id` in the file
    store of `family` (only that family's API can read it). `media_type` decides where it may go."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    family: Family | None = None
    filename: str | None = None
    cache: bool = False


Media = TextPart | ImagePart | FilePart
"""What a user turn or a tool result carries besides calls and thinking."""


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str  # JSON text
    signature: str | None = None  # Gemini thought signature attached to the call
    family: Family | None = None


@dataclass(slots=True)
class ToolResultPart:
    call_id: str
    content: list[Media]
    is_error: bool = False
    name: str | None = None  # Gemini answers by function name; filled in when known
    cache: bool = False


@dataclass(slots=True)
class ThinkingPart:
    text: str
    signature: str | None = None  # Claude signature, Responses encrypted_content, Gemini thoughtSignature
    family: Family | None = None
    redacted: bool = False  # Claude `redacted_thinking`: `signature` holds its opaque data
    item_id: str | None = None  # Responses reasoning item id


Part = TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ThinkingPart
Role = Literal["user", "assistant", "system"]


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON schema (lower-case types)
    cache: bool = False  # a prompt-cache breakpoint after the tool definitions up to this one


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(slots=True)
class ResponseFormat:
    kind: Literal["text", "json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None
    description: str | None = None

    def described_schema(self) -> dict[str, Any]:
        """The schema with the format's description at its root, for wires that have no other place
        for it (Claude, Gemini); a description the schema already has wins."""
        schema = self.schema or {}
        if self.description and "description" not in schema:
            return {**schema, "description": self.description}
        return schema


@dataclass(slots=True)
class WebSearch:
    """A provider-run web search tool (Claude `web_search`, Responses `web_search`, Gemini `googleSearch`)."""

    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    user_location: dict[str, Any] | None = None
    max_uses: int | None = None


@dataclass(slots=True)
class Reasoning:
    """Reasoning settings; `effort` and `budget` may both be set, encoders pick what their wire takes."""

    effort: str | None = None  # none | minimal | low | medium | high | xhigh
    budget: int | None = None  # tokens; -1 = dynamic
    adaptive: bool = False  # Claude adaptive thinking / Gemini dynamic budget
    include_thoughts: bool | None = None
    summary: str | None = None  # Responses reasoning.summary


@dataclass(slots=True)
class Request:
    model: str = ""
    system: list[TextPart] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    user: str | None = None
    metadata: dict[str, Any] | None = None
    web_search: WebSearch | None = None
    cache_key: str | None = None  # OpenAI's `prompt_cache_key`; from Claude, derived from its cached prefix


@dataclass(slots=True)
class Usage:
    """Token counts of one answer, in the conventions above; `reported_total` is 0 unless the wire sent one."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    reported_total: int = 0

    @property
    def total_tokens(self) -> int:
        """The upstream's own total when it states one, else input plus output."""
        return self.reported_total or self.input_tokens + self.output_tokens

    def merge(self, later: Usage) -> None:
        """Later reports win field by field when they carry a value: streams report usage in pieces
        (Claude's input in `message_start`, its output in `message_delta`), so a zero means "not in
        this report", never "reset to zero"."""
        if later.input_tokens:
            self.input_tokens = later.input_tokens
        if later.output_tokens:
            self.output_tokens = later.output_tokens
        if later.cached_tokens:
            self.cached_tokens = later.cached_tokens
        if later.reasoning_tokens:
            self.reasoning_tokens = later.reasoning_tokens
        if later.cache_creation_tokens:
            self.cache_creation_tokens = later.cache_creation_tokens
        if later.reported_total:
            self.reported_total = later.reported_total


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part]
    stop_reason: StopReason = "stop"
    usage: Usage | None = None
    created: int = 0


def new_id(prefix: str) -> str:
    """A random id in the style of the dialect (`call_…`, `msg_…`); ids only need to be unique."""
    return prefix + os.urandom(12).hex()


def short_id(value: str, limit: int = 40) -> str:
    """An id OpenAI accepts (≤ 40 characters for chat, 64 for Responses): long foreign ids are hashed.

    Deterministic, so a call and its result (and later turns re-sending them) keep matching.
    """
    if len(value) <= limit:
        return value
    return "call_" + hashlib.sha256(value.encode()).hexdigest()[:32]


OPENAI_USER_MAX = 64  # OpenAI rejects a longer `user` (Claude Code's metadata.user_id is a JSON blob)


def text_of(parts: list[Media]) -> str:
    """The text of a tool result, for dialects whose tool results are a plain string."""
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return "".join(p.text for p in parts if isinstance(p, TextPart))


class Untranslatable(ValueError):
    """A request the target dialect cannot express without changing its meaning (a clear 400)."""


# ---- stream events -------------------------------------------------------------------------------


@dataclass(slots=True)
class StreamStart:
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    text: str
    signature: str | None = None
    family: Family | None = None
    redacted: bool = False


@dataclass(slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    signature: str | None = None
    family: Family | None = None


@dataclass(slots=True)
class ToolArgsDelta:
    index: int
    delta: str


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class UsageEvent:
    usage: Usage


@dataclass(slots=True)
class Finish:
    stop_reason: StopReason
    usage: Usage | None = None


@dataclass(slots=True)
class ErrorEvent:
    status: int
    message: str


StreamEvent = (
    StreamStart
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolArgsDelta
    | BlockStop
    | UsageEvent
    | Finish
    | ErrorEvent
)
