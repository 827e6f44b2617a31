"""The facade the dispatcher calls for cross-dialect traffic: decode with one codec, encode with another.

Same-dialect traffic never comes here (it is passed through byte for byte), except for a model's
thinking suffix, which is applied to the body in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.accumulate import ResponseBuilder
from cliproxy.translate.codec import StreamDecoder, StreamEncoder
from cliproxy.translate.codecs import CODECS
from cliproxy.translate.ir import ErrorEvent, Finish, Request, ToolCallPart, ToolCallStart, Untranslatable, Usage
from cliproxy.translate.payload import PayloadRules, apply_payload_rules
from cliproxy.translate.reasoning import reasoning_from_suffix, split_thinking_suffix
from cliproxy.translate.sse import SSEEvent
from cliproxy.translate.tool_names import fit_tool_names

__all__ = [
    "CODECS",
    "PayloadRules",
    "StreamAggregator",
    "StreamTranslator",
    "TranslationError",
    "Usage",
    "apply_payload_rules",
    "apply_thinking_suffix",
    "decode_request",
    "split_thinking_suffix",
    "translate_request",
    "translate_response",
]

_BAD_SHAPE = (AttributeError, TypeError, KeyError, IndexError, ValueError)


class TranslationError(ValueError):
    """A body whose shape the source dialect does not allow (a client 400, or an upstream 502)."""


def decode_request(body: dict[str, Any], src: Dialect, *, model: str | None = None) -> Request:
    """A client body as IR, with a `model(suffix)` applied to its reasoning settings."""
    req = CODECS[src].decode_request(body)
    base, suffix = split_thinking_suffix(model if model is not None else req.model)
    req.model = base
    if suffix is not None:
        r = reasoning_from_suffix(suffix)
        if r is not None:
            if req.reasoning is not None and r.include_thoughts is None:
                r.include_thoughts = req.reasoning.include_thoughts
            req.reasoning = r
    return req


def apply_thinking_suffix(body: dict[str, Any], dialect: Dialect, *, model: str) -> tuple[dict[str, Any], str]:
    """Same-dialect traffic: apply a `model(level|budget)` suffix to the body in place.

    Returns the body and the base model name (also written to `body["model"]` where the dialect has
    one). A model without a suffix leaves the body untouched, so passthrough bytes can be reused.
    """
    base, suffix = split_thinking_suffix(model)
    if suffix is None:
        return body, model
    r = reasoning_from_suffix(suffix)
    if r is not None:
        CODECS[dialect].set_reasoning(body, r, base)
    if dialect is not Dialect.GEMINI:
        body["model"] = base
    return body, base


def translate_request(
    body: dict[str, Any],
    src: Dialect,
    dst: Dialect,
    *,
    model: str,
    stream: bool,
    renamed: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Client body (src dialect) → upstream body (dst dialect) for upstream `model` (suffix allowed).

    Tool names the upstream would refuse are shortened; `renamed`, when given, receives
    {upstream name: client name} for them, which `translate_response` and `StreamTranslator` take
    back as `names`. Raises `TranslationError` when the body is not a valid `src` request, or asks
    for something `dst` cannot express.
    """
    try:
        req = decode_request(body, src, model=model)
        req.stream = stream
        shortened = fit_tool_names(req, CODECS[dst].tool_names)
        out = CODECS[dst].encode_request(req)
    except Untranslatable as exc:
        raise TranslationError(f"cannot send this {src.value} request to a {dst.value} upstream: {exc}") from exc
    except _BAD_SHAPE as exc:
        raise TranslationError(f"invalid {src.value} request: {type(exc).__name__}: {exc}") from exc
    if shortened and renamed is not None:
        renamed.update(shortened)
    if dst is Dialect.GEMINI:
        out.pop("model", None)  # Gemini takes the model from the URL
    return out


def translate_response(
    body: dict[str, Any], src: Dialect, dst: Dialect, *, model: str, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Upstream non-stream JSON (src) → client non-stream JSON (dst), showing `model` to the client and
    the client's own tool names (`names`: upstream name → client name, from `translate_request`).

    Raises `TranslationError` when the upstream body is not a valid `src` response.
    """
    try:
        resp = CODECS[src].decode_response(body)
        resp.model = model
        if names:
            for part in resp.parts:
                if isinstance(part, ToolCallPart):
                    part.name = names.get(part.name, part.name)
        return CODECS[dst].encode_response(resp)
    except _BAD_SHAPE as exc:
        raise TranslationError(f"invalid {src.value} response: {type(exc).__name__}: {exc}") from exc


class StreamTranslator:
    """One upstream stream (src dialect) → client SSE bytes (dst dialect), event by event; tool names
    the request shortened (`names`: upstream name → client name) are shown as the client declared them."""

    __slots__ = ("_decoder", "_encoder", "_finished", "_names", "usage")

    def __init__(self, src: Dialect, dst: Dialect, *, model: str, names: Mapping[str, str] | None = None) -> None:
        self._decoder: StreamDecoder = CODECS[src].stream_decoder()
        self._encoder: StreamEncoder = CODECS[dst].stream_encoder(model)
        self._finished = False
        self._names = names or None
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> bytes:
        if self._finished:
            return b""
        try:
            events = self._decoder.decode(event)
        except _BAD_SHAPE:  # a malformed upstream chunk is skipped, not fatal
            return b""
        if not events:
            return b""
        encode = self._encoder.encode
        names = self._names
        out = []
        for ev in events:
            if names is not None and isinstance(ev, ToolCallStart):
                ev.name = names.get(ev.name, ev.name)
            if isinstance(ev, Finish | ErrorEvent):
                self._finished = True
                if isinstance(ev, Finish) and ev.usage is not None:
                    self.usage = ev.usage
            out.append(encode(ev))
        u = getattr(self._decoder, "usage", None)
        if u is not None:
            self.usage = u
        return b"".join(out)

    def finish(self) -> bytes:
        """At upstream EOF: the closing frames the client still needs."""
        if self._finished:
            return self._encoder.finish()
        self._finished = True
        events = self._decoder.finish()
        if self._names is not None:
            for ev in events:
                if isinstance(ev, ToolCallStart):
                    ev.name = self._names.get(ev.name, ev.name)
        out = [self._encoder.encode(ev) for ev in events]
        out.append(self._encoder.finish())
        u = getattr(self._decoder, "usage", None)
        if u is not None:
            self.usage = u
        return b"".join(out)

    def error(self, status: int, message: str) -> bytes:
        """A mid-stream error in the client's dialect; nothing is written after it."""
        self._finished = True
        return self._encoder.error(status, message)


class StreamAggregator:
    """An upstream stream → the non-stream JSON of the SAME dialect (for upstreams that always stream)."""

    __slots__ = ("_builder", "_completed", "_decoder", "_dialect", "_model")

    def __init__(self, dialect: Dialect, *, model: str) -> None:
        self._dialect = dialect
        self._model = model
        self._decoder: StreamDecoder = CODECS[dialect].stream_decoder()
        self._builder = ResponseBuilder()
        self._completed: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage | None:
        return self._builder.usage

    @property
    def error(self) -> ErrorEvent | None:
        """The upstream's in-stream error, if it sent one (the caller answers with an error status)."""
        return self._builder.error

    def feed(self, event: SSEEvent) -> None:
        if self._dialect is Dialect.RESPONSES and (
            event.event == "response.completed" or b'"response.completed"' in event.data[:64]
        ):
            # The terminal event already holds the full response object; keep it verbatim.
            try:
                d = jsonio.loads(event.data)
                if isinstance(d.get("response"), dict) and d["response"].get("output"):
                    self._completed = d["response"]
            except ValueError:
                pass
        try:
            events = self._decoder.decode(event)
        except _BAD_SHAPE:
            return
        for ev in events:
            self._builder.add(ev)

    def result(self) -> dict[str, Any]:
        for ev in self._decoder.finish():
            self._builder.add(ev)
        if self._completed is not None:
            return self._completed
        resp = self._builder.result()
        resp.model = self._model or resp.model
        return CODECS[self._dialect].encode_response(resp)
