"""What the soak's fake upstreams say: answers, streams and error bodies in each provider's wire format.

Each answer carries the tag the client put in its prompt (`soak-tag-<id>`), so a client can tell
its own answer from anyone else's (a connection handed to the wrong request would show). Answers
that must never reach a client (the body of a framing fault, a garbage 200) say `POISON` instead.
"""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

TAG = re.compile(rb"soak-tag-([0-9a-z]+)")
POISON = "POISON"
OVERLOADED = "soak-upstream-overloaded"  # marks an upstream's own 5xx, which the proxy may pass on
DIALECTS = ("chat", "responses", "claude", "gemini")
WORDS = ["Soak", " answer", " for", " a", " fake", " upstream", " that", " misbehaves", " now", " and", " then"]


def dump(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def words_for(tag: str, count: int) -> list[str]:
    """The answer text, in `count` pieces; the first one names the tag."""
    return [f"tag {tag}:"] + [WORDS[i % len(WORDS)] for i in range(count - 1)]


def whole(dialect: str, model: str, text: str, rid: str = "resp_soak") -> bytes:
    """A complete non-stream answer."""
    if dialect == "chat":
        return dump(
            {
                "id": "chatcmpl-soak",
                "object": "chat.completion",
                "created": 1764700000,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
            }
        )
    if dialect == "responses":
        return dump(_response(model, text, "completed", rid))
    if dialect == "claude":
        return dump(
            {
                "id": "msg_soak",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": 7},
            }
        )
    return dump(
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 7, "totalTokenCount": 16},
            "modelVersion": model,
        }
    )


def _response(model: str, text: str | None, status: str, rid: str) -> dict[str, object]:
    output = []
    if text is not None:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        output = [{"type": "message", "id": "msg_soak", "status": "completed", "role": "assistant", "content": content}]
    usage = None
    if status == "completed":
        usage = {
            "input_tokens": 9,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 16,
        }
    return {
        "id": rid,
        "object": "response",
        "created_at": 1764700000,
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
    }


def _sse(event: str | None, obj: object, crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + dump(obj) + end


def events(dialect: str, model: str, pieces: list[str], rid: str = "resp_soak") -> list[bytes]:
    """A complete stream, one SSE event per element."""
    text = "".join(pieces)
    if dialect == "chat":
        base = {"id": "chatcmpl-soak", "object": "chat.completion.chunk", "created": 1764700000, "model": model}
        out = [_sse(None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        for piece in pieces:
            out.append(_sse(None, {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        out.append(_sse(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        return [*out, b"data: [DONE]\n\n"]
    if dialect == "responses":
        seq = iter(range(10_000))
        ids = {"item_id": "msg_soak", "output_index": 0, "content_index": 0}
        item = {"type": "message", "id": "msg_soak", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        out = [
            _sse(
                "response.created", {"type": "response.created", "response": _response(model, None, "in_progress", rid)}
            ),
            _sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
            _sse("response.content_part.added", {"type": "response.content_part.added", **ids, "part": part}),
        ]
        for piece in pieces:
            out.append(
                _sse("response.output_text.delta", {"type": "response.output_text.delta", **ids, "delta": piece})
            )
        done = _response(model, text, "completed", rid)
        out += [
            _sse("response.output_text.done", {"type": "response.output_text.done", **ids, "text": text}),
            _sse(
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]},  # type: ignore[index]
            ),
            _sse("response.completed", {"type": "response.completed", "response": done}),
        ]
        numbered = []
        for raw in out:  # every Responses event carries its sequence number
            head, _, data = raw.partition(b"data: ")
            obj = json.loads(data)
            obj["sequence_number"] = next(seq)
            numbered.append(head + b"data: " + dump(obj) + b"\n\n")
        return numbered
    if dialect == "claude":
        message = {
            "id": "msg_soak",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 1},
        }
        out = [
            _sse("message_start", {"type": "message_start", "message": message}),
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
        ]
        for piece in pieces:
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            out.append(_sse("content_block_delta", delta))
        return [
            *out,
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(pieces)},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
    out = []
    for i, piece in enumerate(pieces):
        cand: dict[str, object] = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
        chunk: dict[str, object] = {"candidates": [cand], "modelVersion": model}
        if i == len(pieces) - 1:
            cand["finishReason"] = "STOP"
            chunk["usageMetadata"] = {"promptTokenCount": 9, "candidatesTokenCount": 7, "totalTokenCount": 16}
        out.append(_sse(None, chunk, crlf=True))
    return out


def overloaded(dialect: str) -> tuple[int, bytes]:
    """An upstream's own 5xx (Anthropic's 529, everyone else's 503)."""
    message = f"{OVERLOADED}: the fake upstream is overloaded, try again"
    if dialect == "claude":
        return 529, dump({"type": "error", "error": {"type": "overloaded_error", "message": message}})
    if dialect == "gemini":
        return 503, dump({"error": {"code": 503, "message": message, "status": "UNAVAILABLE"}})
    return 503, dump({"error": {"message": message, "type": "server_error", "param": None, "code": None}})


# 429 retry hints, sane and bogus. Every dialect can send a Retry-After header; each also has its own
# in-body or header form. Bogus ones (not finite, negative, weeks, words) must be ignored or capped.
HEADER_HINTS = {
    "retry-after-1": "1",
    "retry-after-2.5": "2.5",
    "retry-after-date": "",  # an HTTP date two seconds ahead, made when sent
    "retry-after-inf": "inf",
    "retry-after-nan": "nan",
    "retry-after-negative": "-5",
    "retry-after-weeks": str(3 * 7 * 86400),
    "retry-after-words": "soon, probably",
    "retry-after-huge": "1e999",
}
BODY_HINTS = {
    "chat": ["none"],
    "responses": ["resets-in-2", "resets-in-negative", "resets-in-weeks", "resets-in-1e308", "resets-in-1e999"],
    "claude": ["unified-reset-2", "unified-reset-inf", "unified-reset-weeks"],
    "gemini": ["retry-info-2s", "retry-info-negative", "retry-info-weeks", "retry-info-words", "quota-reset-1.5s"],
}


def hint_styles(dialect: str) -> list[str]:
    return [*HEADER_HINTS, *BODY_HINTS[dialect]]


def rate_limited(dialect: str, style: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and extra headers of a 429 carrying the retry hint `style`."""
    headers: list[tuple[str, str]] = []
    if style in HEADER_HINTS:
        value = HEADER_HINTS[style] or formatdate(time.time() + 2, usegmt=True)
        headers.append(("Retry-After", value))
    message = "soak 429 storm: rate limit reached"
    if dialect == "responses":
        resets: dict[str, str] = {
            "resets-in-2": "2",
            "resets-in-negative": "-40",
            "resets-in-weeks": str(3 * 7 * 86400),
            "resets-in-1e308": "1e308",
            "resets-in-1e999": "1e999",  # not a finite double: the whole body is unreadable JSON
        }
        number = resets.get(style, "1")
        body = b'{"error":{"type":"usage_limit_reached","message":"%s","plan_type":"plus","resets_in_seconds":%s}}' % (
            message.encode(),
            number.encode(),
        )
        if style not in resets:
            body = dump({"error": {"type": "rate_limit_exceeded", "message": message, "code": "rate_limit_exceeded"}})
        return body, headers
    if dialect == "claude":
        reset = {"unified-reset-2": str(int(time.time()) + 2), "unified-reset-inf": "inf"}.get(style)
        if style == "unified-reset-weeks":
            reset = str(int(time.time()) + 3 * 7 * 86400)
        if reset is not None:
            headers.append(("anthropic-ratelimit-unified-reset", reset))
        return dump({"type": "error", "error": {"type": "rate_limit_error", "message": message}}), headers
    if dialect == "gemini":
        delays = {
            "retry-info-2s": "2s",
            "retry-info-negative": "-3s",
            "retry-info-weeks": "1814400s",
            "retry-info-words": "a while",
        }
        details: list[dict[str, object]] = []
        if style in delays:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delays[style]})
        if style == "quota-reset-1.5s":
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "metadata": {"quotaResetDelay": "1.5s"},
                }
            )
        error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}
        return dump({"error": error}), headers
    error = {"message": message, "type": "rate_limit_exceeded", "param": None, "code": "rate_limit_exceeded"}
    return dump({"error": error}), headers
