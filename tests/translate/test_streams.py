"""Stream translation details: parallel calls, thinking, stop reasons, errors, EOF repair, aggregation."""

from __future__ import annotations

from typing import Any

import pytest

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import CODECS, StreamAggregator, StreamTranslator
from cliproxy.translate.ir import Response, TextPart, ThinkingPart, ToolCallPart
from cliproxy.translate.sse import SSEEvent
from tests.translate.transcripts import nonstream_body, parse_sse, stream_events


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> SSEEvent:
    chunk = {"id": "c1", "model": "gpt", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return SSEEvent(None, jsonio.dumps(chunk))


def _claude(kind: str, **data: Any) -> SSEEvent:
    return SSEEvent(kind, jsonio.dumps({"type": kind, **data}))


def _run(src: Dialect, dst: Dialect, events: list[SSEEvent]) -> tuple[bytes, StreamTranslator]:
    tr = StreamTranslator(src, dst, model="client-model")
    return b"".join(tr.feed(e) for e in events) + tr.finish(), tr


def _as_response(dialect: Dialect, data: bytes) -> Response:
    """The client's view of a stream: decode it with the client dialect's own codec."""
    agg = StreamAggregator(dialect, model="client-model")
    for ev in parse_sse(data):
        agg.feed(ev)
    return CODECS[dialect].decode_response(agg.result())


PARALLEL = [
    _chat_chunk({"role": "assistant", "content": ""}),
    _chat_chunk(
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "a", "arguments": ""}}]}
    ),
    _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}),
    _chat_chunk(
        {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "b", "arguments": ""}}]}
    ),
    _chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"y":'}}]}),
    _chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "2}"}}]}),
    _chat_chunk({}, "tool_calls"),
    SSEEvent(None, jsonio.dumps({"id": "c1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})),
    SSEEvent(None, b"[DONE]"),
]


@pytest.mark.parametrize("client", [Dialect.CLAUDE, Dialect.RESPONSES, Dialect.GEMINI], ids=lambda d: d.value)
def test_parallel_tool_calls_stream(client: Dialect) -> None:
    data, tr = _run(Dialect.CHAT, client, PARALLEL)
    resp = _as_response(client, data)
    calls = [(p.name, jsonio.loads(p.arguments)) for p in resp.parts if isinstance(p, ToolCallPart)]
    assert calls == [("a", {"x": 1}), ("b", {"y": 2})]
    assert resp.stop_reason == "tool_calls"
    if client is not Dialect.GEMINI:  # Gemini has no ids on the wire; the others keep the upstream ids
        assert [p.id for p in resp.parts if isinstance(p, ToolCallPart)] == ["call_a", "call_b"]
    assert tr.usage is not None and (tr.usage.input_tokens, tr.usage.output_tokens) == (9, 4)


def test_gemini_stream_tool_ids_are_synthesised() -> None:
    data, _ = _run(Dialect.GEMINI, Dialect.CHAT, stream_events(Dialect.GEMINI, "tool"))
    chunks = [jsonio.loads(e.data) for e in parse_sse(data) if e.data != b"[DONE]"]
    ids = [tc["id"] for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls", ()) if "id" in tc]
    assert len(ids) == 1 and ids[0].startswith("call_")


CLAUDE_THINKING = [
    _claude("message_start", message={"id": "msg_1", "model": "c", "usage": {"input_tokens": 3, "output_tokens": 1}}),
    _claude("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
    _claude("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Let me "}),
    _claude("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "think."}),
    _claude("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "SIG"}),
    _claude("content_block_stop", index=0),
    _claude("content_block_start", index=1, content_block={"type": "text", "text": ""}),
    _claude("content_block_delta", index=1, delta={"type": "text_delta", "text": "Done."}),
    _claude("content_block_stop", index=1),
    _claude("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 20}),
    _claude("message_stop"),
]


def test_claude_thinking_to_responses_reasoning_item() -> None:
    data, _ = _run(Dialect.CLAUDE, Dialect.RESPONSES, CLAUDE_THINKING)
    payloads = [jsonio.loads(e.data) for e in parse_sse(data)]
    kinds = [p["type"] for p in payloads]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.reasoning_summary_text.delta" in kinds
    final = payloads[-1]
    assert final["type"] == "response.incomplete"  # max_tokens → incomplete, as OpenAI does
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    reasoning, message = final["response"]["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert reasoning["encrypted_content"].endswith("SIG") and reasoning["encrypted_content"] != "SIG"
    assert message["content"][0]["text"] == "Done."


def test_claude_thinking_to_chat_and_gemini() -> None:
    data, _ = _run(Dialect.CLAUDE, Dialect.CHAT, CLAUDE_THINKING)
    chunks = [jsonio.loads(e.data) for e in parse_sse(data) if e.data != b"[DONE]"]
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks)
    assert reasoning == "Let me think."
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert b"SIG" not in data
    data, _ = _run(Dialect.CLAUDE, Dialect.GEMINI, CLAUDE_THINKING)
    frames = [jsonio.loads(e.data) for e in parse_sse(data)]
    thoughts = [p for f in frames for p in f["candidates"][0].get("content", {}).get("parts", ()) if p.get("thought")]
    assert "".join(p["text"] for p in thoughts) == "Let me think."
    assert b"SIG" not in data
    assert frames[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_responses_reasoning_to_claude_thinking_block() -> None:
    events = [
        SSEEvent(
            "response.created", jsonio.dumps({"type": "response.created", "response": {"id": "r1", "model": "g"}})
        ),
        SSEEvent(
            "response.output_item.added",
            jsonio.dumps({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning"}}),
        ),
        SSEEvent(
            "response.reasoning_summary_text.delta",
            jsonio.dumps({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "hmm"}),
        ),
        SSEEvent(
            "response.output_item.done",
            jsonio.dumps(
                {
                    "type": "response.output_item.done",
                    "output_index": 0,
                    "item": {"type": "reasoning", "id": "rs_1", "encrypted_content": "ENC"},
                }
            ),
        ),
        *(
            SSEEvent(e.event, e.data.replace(b'"output_index": 0', b'"output_index": 1'))
            for e in stream_events(Dialect.RESPONSES, "text")[2:]
        ),
    ]
    data, _ = _run(Dialect.RESPONSES, Dialect.CLAUDE, events)
    resp = _as_response(Dialect.CLAUDE, data)
    thinking = [p for p in resp.parts if isinstance(p, ThinkingPart)]
    assert thinking[0].text == "hmm" and thinking[0].family == "openai" and thinking[0].signature == "ENC"
    assert "".join(p.text for p in resp.parts if isinstance(p, TextPart)) == "Hello from fake"


@pytest.mark.parametrize("client", list(Dialect), ids=lambda d: d.value)
def test_upstream_error_mid_stream_is_framed_for_the_client(client: Dialect) -> None:
    upstream = Dialect.CLAUDE if client is not Dialect.CLAUDE else Dialect.CHAT
    events = stream_events(upstream, "text")[:3]
    if upstream is Dialect.CLAUDE:
        events.append(_claude("error", error={"type": "overloaded_error", "message": "Overloaded"}))
    else:
        events.append(
            SSEEvent(None, jsonio.dumps({"error": {"message": "Overloaded", "type": "server_error", "code": 529}}))
        )
    data, _ = _run(upstream, client, events)
    last = parse_sse(data)[-1]
    payload = jsonio.loads(last.data)
    if client is Dialect.CHAT:
        assert last.event is None and payload["error"]["message"] == "Overloaded"
        assert b"[DONE]" not in data  # no [DONE] after an error
    elif client is Dialect.CLAUDE:
        assert last.event == "error" and payload["error"]["type"] == "overloaded_error"
    elif client is Dialect.RESPONSES:
        seqs = [jsonio.loads(e.data)["sequence_number"] for e in parse_sse(data)]
        assert last.event == "error" and seqs == list(range(len(seqs)))
    else:  # no `event:` line: google-genai cannot parse one (test_proxy_midstream_error)
        assert last.event is None and payload["error"]["message"] == "Overloaded"


@pytest.mark.parametrize("client", list(Dialect), ids=lambda d: d.value)
def test_translator_error_after_first_bytes(client: Dialect) -> None:
    upstream = Dialect.GEMINI if client is not Dialect.GEMINI else Dialect.CHAT
    tr = StreamTranslator(upstream, client, model="m")
    head = b"".join(tr.feed(e) for e in stream_events(upstream, "text")[:2])
    err = tr.error(502, "upstream went away")
    assert head and b"upstream went away" in err
    assert tr.finish() == b""  # nothing after the error, not even [DONE]
    if client is Dialect.RESPONSES:
        seqs = [jsonio.loads(e.data)["sequence_number"] for e in parse_sse(head + err)]
        assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize("client", [Dialect.CHAT, Dialect.CLAUDE, Dialect.RESPONSES], ids=lambda d: d.value)
def test_truncated_upstream_is_closed_properly(client: Dialect) -> None:
    """Upstream EOF without a terminal event: the client still gets a well-formed ending."""
    events = stream_events(Dialect.CHAT, "text")[:3]  # role chunk, "Hello", " from", then EOF
    data, _ = _run(Dialect.CHAT, client, events)
    frames = parse_sse(data)
    if client is Dialect.CHAT:
        assert frames[-1].data == b"[DONE]"
    elif client is Dialect.CLAUDE:
        assert [f.event for f in frames[-2:]] == ["message_delta", "message_stop"]
    else:
        assert frames[-1].event == "response.completed"
    assert "".join(p.text for p in _as_response(client, data).parts if isinstance(p, TextPart)) == "Hello from"


def test_claude_cache_usage_reaches_openai_clients() -> None:
    events = [
        _claude(
            "message_start",
            message={
                "id": "m",
                "model": "c",
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5},
            },
        ),
        _claude("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _claude("content_block_delta", index=0, delta={"type": "text_delta", "text": "ok"}),
        _claude("content_block_stop", index=0),
        _claude("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 7}),
        _claude("message_stop"),
    ]
    data, tr = _run(Dialect.CLAUDE, Dialect.CHAT, events)
    usage = [jsonio.loads(e.data)["usage"] for e in parse_sse(data) if b'"usage"' in e.data][-1]
    assert usage["prompt_tokens"] == 115 and usage["completion_tokens"] == 7
    assert usage["prompt_tokens_details"]["cached_tokens"] == 100
    assert tr.usage is not None and (tr.usage.cached_tokens, tr.usage.cache_creation_tokens) == (100, 5)
    data, _ = _run(Dialect.CLAUDE, Dialect.RESPONSES, events)
    final = jsonio.loads(parse_sse(data)[-1].data)["response"]["usage"]
    assert (final["input_tokens"], final["input_tokens_details"]["cached_tokens"], final["output_tokens"]) == (
        115,
        100,
        7,
    )


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
@pytest.mark.parametrize("case", ["text", "tool"])
def test_aggregator_matches_the_non_stream_answer(dialect: Dialect, case: str) -> None:
    agg = StreamAggregator(dialect, model="client-model")
    for ev in stream_events(dialect, case):
        agg.feed(ev)
    got = CODECS[dialect].decode_response(agg.result())
    want = CODECS[dialect].decode_response(nonstream_body(dialect, case))

    def meaning(r: Response) -> tuple[Any, ...]:
        text = "".join(p.text for p in r.parts if isinstance(p, TextPart))
        calls = [(p.name, jsonio.loads(p.arguments)) for p in r.parts if isinstance(p, ToolCallPart)]
        return text, calls, r.stop_reason

    assert meaning(got) == meaning(want)
    if (dialect, case) != (Dialect.CHAT, "tool"):
        assert agg.usage is not None and (agg.usage.input_tokens, agg.usage.output_tokens) == (5, 3)


def test_responses_aggregator_keeps_the_completed_response_verbatim() -> None:
    agg = StreamAggregator(Dialect.RESPONSES, model="m")
    events = stream_events(Dialect.RESPONSES, "tool")
    for ev in events:
        agg.feed(ev)
    assert agg.result() == jsonio.loads(events[-1].data)["response"]


def test_refusals_reach_the_client_as_text() -> None:
    events = [
        _chat_chunk({"role": "assistant", "refusal": ""}),
        _chat_chunk({"refusal": "I can't."}),
        _chat_chunk({}, "stop"),
    ]
    data, _ = _run(Dialect.CHAT, Dialect.CLAUDE, events)
    assert "".join(p.text for p in _as_response(Dialect.CLAUDE, data).parts if isinstance(p, TextPart)) == "I can't."
