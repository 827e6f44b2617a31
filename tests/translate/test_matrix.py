"""All 12 directed pairs × {stream, non-stream} × {plain text, tool-call round trip}, at the codec level.

Upstream answers are the recorded wire transcripts (tests/fixtures/wire) and the matching recorded
non-stream bodies; what reaches the client is decoded again with the client dialect's own codec.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.accumulate import ResponseBuilder
from cliproxy.translate.convert import CODECS, StreamTranslator, translate_request, translate_response
from cliproxy.translate.ir import Response, TextPart, ToolCallPart, ToolResultPart
from tests.translate import samples
from tests.translate.transcripts import nonstream_body, parse_sse, stream_events

PAIRS = [(a, b) for a, b in itertools.permutations(Dialect, 2)]
IDS = [f"{a.value}->{b.value}" for a, b in PAIRS]


def _text(resp: Response) -> str:
    return "".join(p.text for p in resp.parts if isinstance(p, TextPart))


def _calls(resp: Response) -> list[tuple[str, Any]]:
    return [(p.name, jsonio.loads(p.arguments)) for p in resp.parts if isinstance(p, ToolCallPart)]


def _check_answer(resp: Response, case: str, *, usage: bool = True) -> None:
    if case == "text":
        assert _text(resp) == "Hello from fake"
        assert resp.stop_reason == "stop"
    else:
        assert _calls(resp) == [("get_weather", {"city": "Paris"})]
        assert resp.stop_reason == "tool_calls"
        assert all(p.id for p in resp.parts if isinstance(p, ToolCallPart))
    if usage:
        assert resp.usage is not None
        assert (resp.usage.input_tokens, resp.usage.output_tokens) == (5, 3)


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
@pytest.mark.parametrize("case", ["text", "tool"])
def test_request(client: Dialect, upstream: Dialect, case: str) -> None:
    body = samples.text_request(client) if case == "text" else samples.tool_request(client)
    out = translate_request(body, client, upstream, model="up-model", stream=False)
    if upstream is Dialect.GEMINI:
        assert "model" not in out
    else:
        assert out["model"] == "up-model"
    req = CODECS[upstream].decode_request(out)
    if case == "text":
        assert [p.text for p in req.system] == ["be brief"]
        assert [(m.role, [p.text for p in m.parts if isinstance(p, TextPart)]) for m in req.messages] == [
            ("user", ["hi"])
        ]
        assert req.max_tokens == 64
        assert req.temperature == 0.2
        return
    assert [t.name for t in req.tools] == ["get_weather"]
    assert req.tools[0].parameters["properties"]["city"]["type"] == "string"
    calls = [p for m in req.messages for p in m.parts if isinstance(p, ToolCallPart)]
    results = [p for m in req.messages for p in m.parts if isinstance(p, ToolResultPart)]
    assert [(c.name, jsonio.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert [r.content[0].text for r in results if isinstance(r.content[0], TextPart)] == ["sunny"]
    assert results[0].call_id == calls[0].id
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
@pytest.mark.parametrize("case", ["text", "tool"])
def test_nonstream_response(client: Dialect, upstream: Dialect, case: str) -> None:
    out = translate_response(nonstream_body(upstream, case), upstream, client, model="client-model")
    resp = CODECS[client].decode_response(out)
    _check_answer(resp, case)


def _check_framing(client: Dialect, data: bytes) -> None:
    events = parse_sse(data)
    assert events
    if client is Dialect.CHAT:
        assert events[-1].data == b"[DONE]"
        assert all(e.event is None for e in events)
    elif client is Dialect.GEMINI:
        assert all(e.event is None and e.data != b"[DONE]" for e in events)
    elif client is Dialect.CLAUDE:
        names = [e.event for e in events]
        assert names[0] == "message_start"
        assert names[-2:] == ["message_delta", "message_stop"]
        assert all(jsonio.loads(e.data)["type"] == e.event for e in events)
    else:
        payloads = [jsonio.loads(e.data) for e in events]
        assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
        assert payloads[0]["type"] == "response.created"
        assert payloads[-1]["type"] == "response.completed"
        ids = {p["response"]["id"] for p in payloads if "response" in p}
        assert len(ids) == 1


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
@pytest.mark.parametrize("case", ["text", "tool"])
def test_stream(client: Dialect, upstream: Dialect, case: str) -> None:
    tr = StreamTranslator(upstream, client, model="client-model")
    data = b"".join(tr.feed(ev) for ev in stream_events(upstream, case)) + tr.finish()
    _check_framing(client, data)
    decoder = CODECS[client].stream_decoder()
    builder = ResponseBuilder()
    for ev in parse_sse(data):
        for ir_ev in decoder.decode(ev):
            builder.add(ir_ev)
    for ir_ev in decoder.finish():
        builder.add(ir_ev)
    # the recorded chat tool stream was made without stream_options.include_usage: it has no usage
    has_usage = (upstream, case) != (Dialect.CHAT, "tool")
    _check_answer(builder.result(), case, usage=has_usage)
    if has_usage:
        assert tr.usage is not None
        assert (tr.usage.input_tokens, tr.usage.output_tokens) == (5, 3)
