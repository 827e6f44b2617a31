"""Fake upstreams speaking the exact recorded wire formats of each provider.

One aiohttp app serves all dialects: OpenAI chat (`/v1/chat/completions`), Responses (`/v1/responses`,
`/responses`), Anthropic (`/v1/messages`, `count_tokens`), Gemini (`/v1beta/models/{m}:{method}`) and
Vertex (`/v1/publishers/google/models/{m}:{method}`). Streams replay `fixtures/wire/*.txt` byte for
byte, one SSE event per network write. Every request is recorded (`seen`); `fail()` queues error
answers (optionally only for one credential's key); `hold` keeps a stream open after the first event
so a test can disconnect the client and watch the upstream connection close (`closed`).
`tool_loop` answers like a model in a tool loop (a tool call first, text once the conversation ends
with a tool result); `fresh_response_ids` gives every Responses stream its own response id;
`stream_body` replaces whatever stream would be replayed (e.g. one that breaks off with an error event).
`delay` makes every answer wait that many seconds after the request is read (a slow model).
`answer` replaces the non-stream JSON answer of every dialect; `answer` and `stream_body` may also be
functions of the request body (to answer with a tool name the request declared, for instance).
Before answering, every generate request is checked against the rules the real API enforces
(`wire_rules`): a request the real API would refuse gets the 400 the real API would send, so a
translation that a real upstream would refuse fails the test that sent it. `problems` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.wire_rules import chat_problem, claude_problem, gemini_problem, responses_problem

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"  # copies of ../shared's, plus our own


def wire_body(name: str) -> bytes:
    """The body of a recorded HTTP answer (everything after the header block)."""
    raw = (WIRE / name).read_bytes()
    crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):  # Google's recordings use CRLF throughout
        return raw[crlf + 4 :]
    return raw[lf + 2 :]


def events_of(body: bytes) -> list[bytes]:
    """Split an SSE body into its events, each with its trailing blank line."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"
    return [part + sep for part in body.split(sep) if part.strip()]


CHAT_COMPLETION = {
    "id": "chatcmpl-fake1",
    "object": "chat.completion",
    "created": 1795320731,
    "model": "gpt-fake",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from fake", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "total_tokens": 8,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
}
CHAT_TOOL_COMPLETION = {
    **CHAT_COMPLETION,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_fake1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
}
RESPONSE = {
    "id": "resp_fake1",
    "object": "response",
    "created_at": 1795320731,
    "status": "completed",
    "model": "gpt-fake",
    "output": [
        {
            "type": "message",
            "id": "msg_fake1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello from fake", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 8,
    },
}
RESPONSE_TOOL = {
    **RESPONSE,
    "id": "resp_fake2",
    "output": [
        {
            "type": "function_call",
            "id": "fc_fake1",
            "status": "completed",
            "call_id": "call_fake1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        }
    ],
}
# Non-stream Anthropic answer with a thinking block (signature) and an unknown field: byte-exact checks.
CLAUDE_MESSAGE = (
    b'{"id":"msg_fake1","type":"message","role":"assistant","model":"claude-fake-1","content":['
    b'{"type":"thinking","thinking":"Let me think.","signature":"EqQBCkYIBxgCKkB+sig/==\\u00e9"},'
    b'{"type":"text","text":"Hello from fake"}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":5,"output_tokens":3,"cache_creation_input_tokens":1,"cache_read_input_tokens":2},'
    b'"x_unknown_field":{"keep":[1,2,3]}}'
)
CLAUDE_TOOL_MESSAGE = {
    "id": "msg_fake2",
    "type": "message",
    "role": "assistant",
    "model": "claude-fake-1",
    "content": [{"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": {"city": "Paris"}}],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 3},
}
GEMINI_RESPONSE = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "Hello from fake"}]}, "finishReason": "STOP", "index": 0}
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    "modelVersion": "gemini-fake",
}


# Gemini streams a function call as one chunk: the recorded tool answer, framed like `gemini_stream.txt`.
GEMINI_TOOL_STREAM = b"data: " + json.dumps(json.loads(wire_body("gemini_generate_tool.txt"))).encode() + b"\r\n\r\n"
_RESPONSE_ID = re.compile(rb'"id": "resp_[0-9a-f]+"')


def ends_with_tool_result(dialect: str, body: dict[str, Any]) -> bool:
    """Whether the last turn of a request body is a tool result (the second leg of a tool loop)."""
    if dialect == "responses":
        items = body.get("input")
        last = items[-1] if isinstance(items, list) and items else None
        return isinstance(last, dict) and last.get("type") in ("function_call_output", "custom_tool_call_output")
    if dialect == "chat":
        messages = body.get("messages") or []
        return bool(messages) and messages[-1].get("role") == "tool"
    if dialect == "claude":
        messages = body.get("messages") or []
        content = messages[-1].get("content") if messages else None
        return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
    contents = body.get("contents") or []
    parts = contents[-1].get("parts") if contents else None
    return isinstance(parts, list) and any("functionResponse" in p for p in parts)


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)  # every header line, duplicates too

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def model(self) -> str | None:
        """The upstream model asked for: the body's `model`, or the Gemini/Vertex URL's."""
        if "/models/" in self.path:
            return self.path.rsplit("/models/", 1)[1].rpartition(":")[0]
        body = self.json if self.body[:1] == b"{" else None
        return body.get("model") if isinstance(body, dict) else None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Planned:
    status: int
    body: bytes
    headers: dict[str, str]
    key: str | None  # only for requests carrying this credential key
    times: int
    model: str | None = None  # only for requests for this upstream model (body or Gemini URL)


def error_payload(dialect: str, status: int, message: str) -> bytes:
    if dialect == "claude":
        kind = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status)
        kind = kind or ("api_error" if status >= 500 else "invalid_request_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    if dialect == "gemini":
        names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
        return json.dumps(
            {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}}
        ).encode()
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_exceeded"}.get(status)
    return json.dumps(
        {"error": {"message": message, "type": kind or "server_error", "param": None, "code": None}}
    ).encode()


@dataclass
class FakeUpstream:
    """All four provider dialects on one aiohttp app (see module docstring)."""

    seen: list[Seen] = field(default_factory=list)
    plan: list[Planned] = field(default_factory=list)
    hold: bool = False
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)
    tool_loop: bool = False
    fresh_response_ids: bool = False
    stream_body: bytes | Callable[[Any], bytes] | None = None
    delay: float = 0.0
    answer: Any = None  # a JSON value, or a function of the request body returning one
    answer_headers: dict[str, str] = field(default_factory=dict)  # extra headers on chat answers
    problems: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def wants_tool(self, dialect: str, body: dict[str, Any]) -> bool:
        """Answer with the tool-call recording? (Tools offered, and in a tool loop not already answered.)"""
        if not body.get("tools"):
            return False
        return not (self.tool_loop and ends_with_tool_result(dialect, body))

    def fail(
        self,
        status: int,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
        times: int = 1,
        dialect: str = "chat",
        model: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (times=0: forever)."""
        payload = body if body is not None else error_payload(dialect, status, f"fake upstream error {status}")
        self.plan.append(Planned(status, payload, dict(headers or {}), key, times, model))

    def refuse(self, dialect: str, problem: str | None) -> web.Response | None:
        """The real API's 400 for a request it would not accept (None when it would)."""
        if problem is None:
            return None
        self.problems.append(problem)
        return web.Response(status=400, body=error_payload(dialect, 400, problem), content_type="application/json")

    def calls(self, key: str | None = None) -> list[Seen]:
        return [s for s in self.seen if key is None or _carries(s.headers, key)]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/responses", self.responses)
        app.router.add_post("/backend-api/codex/responses", self.chatgpt_codex)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_post("/v1beta/models/{target:.+}", self.gemini)
        app.router.add_post("/v1/publishers/google/models/{target:.+}", self.gemini)
        return app

    async def _record(self, request: web.Request) -> Seen:
        body = await request.read()
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
            list(request.headers.items()),
        )
        self.seen.append(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        return seen

    def _planned(self, seen: Seen) -> web.Response | None:
        for item in self.plan:
            if item.model is not None and item.model != seen.model:
                continue
            if item.key is None or _carries(seen.headers, item.key):
                if item.times == 1:
                    self.plan.remove(item)
                elif item.times > 1:
                    item.times -= 1
                # A planned answer of SSE events is served as a real upstream serves a stream.
                sse = item.body.lstrip().startswith((b"event:", b"data:"))
                content_type = "text/event-stream" if sse else "application/json"
                return web.Response(status=item.status, body=item.body, headers=item.headers, content_type=content_type)
        return None

    def _answer(self, sent: Any) -> web.Response:
        return web.json_response(self.answer(sent) if callable(self.answer) else self.answer)

    async def _stream(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if self.stream_body is not None:
            stream_body = self.stream_body
            body = stream_body(self.seen[-1].json if self.seen else None) if callable(stream_body) else stream_body
        response = web.StreamResponse(
            headers={**self.answer_headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for index, event in enumerate(events_of(body)):
                await response.write(event)
                if index == 0:
                    self.first_sent.set()
                    if self.hold:  # 30 s, or until a test sets `resume`
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self.resume.wait(), 30)
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.closed.set()
            raise
        return response

    async def chat(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        planned = self._planned(seen)
        if planned is not None:
            return planned
        body = seen.json
        refused = self.refuse("chat", chat_problem(body))
        if refused is not None:
            return refused
        tools = self.wants_tool("chat", body)
        if body.get("stream"):
            return await self._stream(
                request, wire_body("openai_chat_stream_tool.txt" if tools else "openai_chat_stream.txt")
            )
        if self.answer is not None:
            return self._answer(body)
        answer = dict(CHAT_TOOL_COMPLETION if tools else CHAT_COMPLETION, model=body.get("model"))
        return web.json_response(answer, headers=self.answer_headers)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        planned = self._planned(seen)
        if planned is not None:
            return planned
        body = seen.json
        refused = self.refuse("chat", responses_problem(body))
        if refused is not None:
            return refused
        tools = self.wants_tool("responses", body)
        if body.get("stream"):
            name = "openai_responses_stream_tool.txt" if tools else "openai_responses_stream.txt"
            stream = wire_body(name)
            if self.fresh_response_ids:
                stream = _RESPONSE_ID.sub(f'"id": "resp_{next(self._ids):012x}"'.encode(), stream)
            return await self._stream(request, stream)
        if self.answer is not None:
            return self._answer(body)
        tool_answer = tools and self.tool_loop  # without `tool_loop` the text answer, as before
        return web.json_response(dict(RESPONSE_TOOL if tool_answer else RESPONSE, model=body.get("model")))

    async def chatgpt_codex(self, request: web.Request) -> web.StreamResponse:
        """The ChatGPT Codex backend: Responses over SSE only, with its known refusals (400 `detail`)."""
        body = json.loads(await request.read())
        problem = chatgpt_backend_problem(body, request.headers)
        if problem is not None:
            self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), b""))
            return web.json_response({"detail": problem}, status=400)
        return await self.responses(request)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        planned = self._planned(seen)
        if planned is not None:
            return planned
        body = seen.json
        refused = self.refuse("claude", claude_problem(body, seen.header("anthropic-beta") or ""))
        if refused is not None:
            return refused
        tools = self.wants_tool("claude", body)
        if body.get("stream"):
            name = "anthropic_stream_tool.txt" if tools else "anthropic_stream.txt"
            if body.get("thinking") and not tools:  # thinking blocks, signatures, unknown fields
                name = "anthropic_stream_thinking.txt"
            return await self._stream(request, wire_body(name))
        if self.answer is not None:
            return self._answer(body)
        if tools:
            return web.json_response(CLAUDE_TOOL_MESSAGE)
        return web.Response(body=CLAUDE_MESSAGE, content_type="application/json")

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        planned = self._planned(seen)
        if planned is not None:
            return planned
        body = seen.json
        # As Anthropic's API: model and messages required, no field a count does not take.
        extra = sorted(set(body) - CLAUDE_COUNT_FIELDS) if isinstance(body, dict) else []
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages") or extra:
            message = f"{extra[0]}: Extra inputs are not permitted" if extra else "model and messages are required"
            return web.Response(body=error_payload("claude", 400, message), status=400, content_type="application/json")
        return web.json_response({"input_tokens": 7})

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        planned = self._planned(seen)
        if planned is not None:
            return planned
        _, _, method = request.match_info["target"].rpartition(":")
        body = seen.json or {}
        if method in ("generateContent", "streamGenerateContent"):
            refused = self.refuse("gemini", gemini_problem(body))
            if refused is not None:
                return refused
        tools = self.wants_tool("gemini", body)
        if method == "streamGenerateContent":
            tool_stream = tools and self.tool_loop  # without `tool_loop` the recorded text stream, as before
            return await self._stream(request, GEMINI_TOOL_STREAM if tool_stream else wire_body("gemini_stream.txt"))
        if method == "countTokens":
            # As Google's API: `contents`, or a `generateContentRequest` naming its model, not both.
            inner = body.get("generateContentRequest")
            valid = ("contents" in body) != (inner is not None) and (
                inner is None or (str(inner.get("model", "")).startswith("models/") and inner.get("contents"))
            )
            if not valid:
                return web.Response(
                    body=error_payload("gemini", 400, "invalid countTokens request"),
                    status=400,
                    content_type="application/json",
                )
            return web.json_response({"totalTokens": 7})
        if self.answer is not None:
            return self._answer(body)
        if tools:
            return web.Response(body=wire_body("gemini_generate_tool.txt"), content_type="application/json")
        return web.json_response(GEMINI_RESPONSE)


CLAUDE_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management"}
)
CHATGPT_UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "truncation", "user")


def chatgpt_backend_problem(body: Any, headers: Mapping[str, str]) -> str | None:
    """Why the ChatGPT Codex backend would refuse this request, or None when it would serve it."""
    if not isinstance(body, dict):
        return "Invalid JSON body"
    if not any(k.lower() == "chatgpt-account-id" and v for k, v in headers.items()):
        return "Missing ChatGPT-Account-Id"
    if body.get("stream") is not True:
        return "Stream must be set to true"
    if body.get("store") is not False:
        return "Store must be set to false"
    if not isinstance(body.get("instructions"), str):
        return "Instructions are required"
    if not isinstance(body.get("input"), list):
        return "Input must be a list"
    if any(isinstance(i, dict) and i.get("role") == "system" for i in body["input"]):
        return "System messages are not allowed"
    for key in CHATGPT_UNSUPPORTED:
        if key in body:
            return f"Unsupported parameter: {key}"
    return None


def _carries(headers: Mapping[str, str], key: str) -> bool:
    for name in ("Authorization", "x-api-key", "x-goog-api-key"):
        for k, v in headers.items():
            if k.lower() == name.lower() and key in v:
                return True
    return False
