"""The memory of one Responses WebSocket: turns a client frame into a full upstream request.

Clients of WebSocket mode (Codex CLI, `client.responses.connect()`) chain responses with
`previous_response_id` and send only the new input items, because the real server keeps the
conversation per connection. HTTP upstreams (and every translated one) keep nothing, so the proxy
keeps it instead: each finished response is remembered as its request plus the whole transcript
(input items followed by output items), and a chained frame is rebuilt into
`transcript + new input` before it goes upstream. Items are shared by reference between
remembered turns, so the memory costs one list of pointers per turn.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

CREATE = "response.create"
APPEND = "response.append"
# Fields that only mean something on the socket; an HTTP upstream must never see them.
WS_ONLY_FIELDS = frozenset({"type", "generate", "previous_response_id", "stream_id"})
# Request fields a chained frame inherits from the turn it continues when it leaves them out.
INHERITED_FIELDS = ("model", "instructions", "tools")
REMEMBERED_TURNS = 16  # per socket; enough for Codex, which only ever chains to the last response
TOOL_CALL_TYPES = frozenset({"function_call", "custom_tool_call"})
# Codex replaces its history with this summary after a local compaction (codex-rs SUMMARY_PREFIX).
COMPACTION_SUMMARY_PREFIX = "Another language model started to solve this problem and produced a summary"
STREAM_ID = re.compile(r"[A-Za-z0-9_.-]{1,256}")


class FrameError(Exception):
    """A client frame that cannot be served; becomes an in-band `error` event (socket stays open)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


@dataclass(slots=True)
class Turn:
    """A finished response as the next chained frame needs it."""

    request: dict[str, Any]  # the upstream body that produced it
    transcript: list[Any]  # its input items, then its output items


@dataclass(slots=True)
class Plan:
    """What to do with one frame: the upstream body, and whether to generate at all."""

    body: dict[str, Any]
    items: list[Any]  # `body["input"]` as a list of items (what the transcript starts with)
    generate: bool
    stream_id: str | None
    # For an upstream that keeps the conversation itself (its own WebSocket): the frame as the
    # client sent it (new input only) and the response it continues.
    frame: dict[str, Any] | None = None
    previous: str | None = None


def as_items(value: Any) -> list[Any]:
    """`input` as a list of items: a string is one user message (as the Responses API reads it)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if isinstance(value, list):
        return value
    raise FrameError(400, "websocket request requires array field: input", param="input")


def _message_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "input_text")
    return ""


def carries_history(items: list[Any]) -> bool:
    """True when new input already holds earlier turns (a tool call, an assistant message, or a
    Codex compaction summary): appending it to the remembered transcript would duplicate them."""
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or "message"
        if kind in TOOL_CALL_TYPES:
            return True
        if kind == "message":
            role = item.get("role")
            if role == "assistant":
                return True
            if role == "user" and _message_text(item).startswith(COMPACTION_SUMMARY_PREFIX):
                return True
    return False


def merge(transcript: list[Any], new_items: list[Any]) -> list[Any]:
    """`transcript + new_items`, skipping new items the transcript already holds (same `id`, or a
    tool call with the same `call_id`): upstreams reject a request with a duplicated item."""
    ids: set[str] = set()
    calls: set[str] = set()
    for item in transcript:
        if isinstance(item, dict):
            ident = item.get("id")
            if isinstance(ident, str):
                ids.add(ident)
            if item.get("type") in TOOL_CALL_TYPES and isinstance(item.get("call_id"), str):
                calls.add(item["call_id"])
    merged = list(transcript)
    for item in new_items:
        if isinstance(item, dict):
            ident = item.get("id")
            if isinstance(ident, str) and ident in ids:
                continue
            if item.get("type") in TOOL_CALL_TYPES and item.get("call_id") in calls:
                continue
        merged.append(item)
    return merged


class ChainMemory:
    """The remembered turns of one socket, newest last (bounded)."""

    __slots__ = ("_last", "_last_id", "_turns")

    def __init__(self) -> None:
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._last: Turn | None = None
        self._last_id: str | None = None

    def plan(self, frame: dict[str, Any]) -> Plan:
        """The upstream body for `frame`; raises `FrameError` for what must be answered in-band."""
        kind = frame.get("type")
        if kind not in (CREATE, APPEND):
            raise FrameError(400, f"unsupported websocket request type: {kind}", param="type")
        stream_id = frame.get("stream_id")
        if stream_id is not None and not (isinstance(stream_id, str) and STREAM_ID.fullmatch(stream_id)):
            raise FrameError(400, "stream_id must be 1-256 characters of [A-Za-z0-9_.-]", code="invalid_stream_id")
        base: Turn | None = None
        prev = frame.get("previous_response_id")
        if kind == APPEND:
            base = self._last
            if base is None:
                raise FrameError(400, "websocket request received before response.create")
            prev = self._last_id
        elif prev is not None:
            base = self._turns.get(prev) if isinstance(prev, str) else None
            if base is None:
                raise FrameError(
                    409,
                    "Previous response is not available on this websocket; "
                    "resend the full conversation input without previous_response_id",
                    code="previous_response_not_found",
                    param="previous_response_id",
                )
        body = {k: v for k, v in frame.items() if k not in WS_ONLY_FIELDS}
        body["stream"] = True  # the socket always streams; Codex sends it, the SDK leaves it out
        if base is None:
            items = as_items(body.get("input"))
            if "input" not in body:
                body["input"] = items
        else:
            for name in INHERITED_FIELDS:
                if name not in body and name in base.request:
                    body[name] = base.request[name]
            new_items = as_items(body.get("input"))
            items = new_items if carries_history(new_items) else merge(base.transcript, new_items)
            body["input"] = items
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise FrameError(400, "missing model in response.create request", param="model")
        own = {k: v for k, v in frame.items() if k not in WS_ONLY_FIELDS}
        own["model"] = model
        previous = prev if base is not None and isinstance(prev, str) else None
        if previous is not None:
            own["previous_response_id"] = previous
        return Plan(body, items, frame.get("generate") is not False, stream_id, own, previous)

    def remember(self, response_id: str, plan: Plan, output: list[Any]) -> None:
        """Keep a finished response so a later frame can chain to it by id."""
        turn = Turn(plan.body, [*plan.items, *output])
        turns = self._turns
        turns.pop(response_id, None)
        turns[response_id] = turn
        while len(turns) > REMEMBERED_TURNS:
            turns.popitem(last=False)
        self._last = turn
        self._last_id = response_id
