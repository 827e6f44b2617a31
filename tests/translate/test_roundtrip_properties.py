"""Property: any valid request in any dialect survives translation to every other dialect and back.

Hypothesis draws an abstract conversation (system prompt, user turns, assistant text, parallel tool
calls with JSON arguments, tool results, optional trailing user text); each dialect renders it in its
own wire shape, written here by hand from the API docs rather than by our codecs. After
src → dst (and dst → src again) the decoded conversation must hold the same text, the same tool
calls (name, arguments) and the same results for the same calls.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import CODECS, translate_request
from tests.translate.samples import canonical


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]


@dataclass
class Turn:
    role: str  # user | assistant
    text: str | None = None
    calls: list[Call] | None = None
    results: list[tuple[Call, str]] | None = None


@dataclass
class Convo:
    system: str | None
    turns: list[Turn]
    tools: list[str]


texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
json_values = st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=12), st.booleans(), st.none())
args = st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=3)


@st.composite
def convos(draw: st.DrawFn) -> Convo:
    tools = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    turns = [Turn("user", text=draw(texts))]
    counter = itertools.count()
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            turns.append(Turn("assistant", text=draw(texts)))
            turns.append(Turn("user", text=draw(texts)))
            continue
        calls = [
            Call(f"call_{next(counter)}", draw(st.sampled_from(tools)), draw(args))
            for _ in range(draw(st.integers(1, 3)))
        ]
        turns.append(Turn("assistant", text=draw(st.none() | texts), calls=calls))
        turns.append(Turn("user", text=draw(st.none() | texts), results=[(c, draw(texts)) for c in calls]))
    return Convo(draw(st.none() | texts), turns, tools)


# ---- hand-written renderings, one per dialect -----------------------------------------------------


def render_chat(c: Convo) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": c.system}] if c.system else []
    for t in c.turns:
        if t.role == "assistant":
            m: dict[str, Any] = {"role": "assistant", "content": t.text}
            if t.calls:
                m["tool_calls"] = [
                    {
                        "id": k.id,
                        "type": "function",
                        "function": {"name": k.name, "arguments": jsonio.dumps(k.args).decode()},
                    }
                    for k in t.calls
                ]
            msgs.append(m)
            continue
        for k, out in t.results or ():
            msgs.append({"role": "tool", "tool_call_id": k.id, "content": out})
        if t.text:
            msgs.append({"role": "user", "content": t.text})
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in c.tools]
    return {"model": "m", "messages": msgs, "tools": tools}


def render_responses(c: Convo) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for t in c.turns:
        if t.role == "assistant":
            if t.text:
                items.append(
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": t.text}]}
                )
            for k in t.calls or ():
                items.append(
                    {
                        "type": "function_call",
                        "call_id": k.id,
                        "name": k.name,
                        "arguments": jsonio.dumps(k.args).decode(),
                    }
                )
            continue
        for k, out in t.results or ():
            items.append({"type": "function_call_output", "call_id": k.id, "output": out})
        if t.text:
            items.append({"role": "user", "content": [{"type": "input_text", "text": t.text}]})
    body: dict[str, Any] = {"model": "m", "input": items}
    body["tools"] = [{"type": "function", "name": n, "parameters": {"type": "object"}} for n in c.tools]
    if c.system:
        body["instructions"] = c.system
    return body


def render_claude(c: Convo) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    for t in c.turns:
        blocks: list[dict[str, Any]] = []
        if t.role == "assistant":
            if t.text:
                blocks.append({"type": "text", "text": t.text})
            blocks += [{"type": "tool_use", "id": k.id, "name": k.name, "input": k.args} for k in t.calls or ()]
        else:
            blocks += [{"type": "tool_result", "tool_use_id": k.id, "content": out} for k, out in t.results or ()]
            if t.text:
                blocks.append({"type": "text", "text": t.text})
        msgs.append({"role": t.role, "content": blocks})
    body: dict[str, Any] = {"model": "m", "max_tokens": 100, "messages": msgs}
    body["tools"] = [{"name": n, "input_schema": {"type": "object"}} for n in c.tools]
    if c.system:
        body["system"] = [{"type": "text", "text": c.system}]
    return body


def render_gemini(c: Convo) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    for t in c.turns:
        parts: list[dict[str, Any]] = []
        if t.role == "assistant":
            if t.text:
                parts.append({"text": t.text})
            parts += [{"functionCall": {"name": k.name, "args": k.args}} for k in t.calls or ()]
        else:
            parts += [
                {"functionResponse": {"name": k.name, "response": {"content": out}}} for k, out in t.results or ()
            ]
            if t.text:
                parts.append({"text": t.text})
        contents.append({"role": "model" if t.role == "assistant" else "user", "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    body["tools"] = [{"functionDeclarations": [{"name": n} for n in c.tools]}]
    if c.system:
        body["system_instruction"] = {"parts": [{"text": c.system}]}
    return body


RENDER = {
    Dialect.CHAT: render_chat,
    Dialect.RESPONSES: render_responses,
    Dialect.CLAUDE: render_claude,
    Dialect.GEMINI: render_gemini,
}


def expected(c: Convo) -> tuple[str, list[tuple[str, list[tuple[Any, ...]]]]]:
    turns: list[tuple[str, list[tuple[Any, ...]]]] = []
    for t in c.turns:
        items: list[tuple[Any, ...]] = []
        if t.role == "assistant":
            if t.text:
                items.append(("text", t.text))
            items += [("call", k.name, k.args) for k in t.calls or ()]
        else:
            items += [("result", k.name, k.args, out) for k, out in t.results or ()]
            if t.text:
                items.append(("text", t.text))
        turns.append((t.role, items))
    return c.system or "", turns


def _check(src: Dialect, convo: Convo) -> None:
    body = RENDER[src](convo)
    want = expected(convo)
    assert canonical(CODECS[src].decode_request(body)) == want
    for dst in Dialect:
        if dst is src:
            continue
        there = translate_request(body, src, dst, model="m", stream=False)
        assert canonical(CODECS[dst].decode_request(there)) == want, f"{src.value}->{dst.value}"
        back = translate_request(there, dst, src, model="m", stream=False)
        assert canonical(CODECS[src].decode_request(back)) == want, f"{src.value}->{dst.value}->{src.value}"
        assert [t.name for t in CODECS[dst].decode_request(there).tools] == convo.tools


PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(convos())
def test_chat_requests_roundtrip(convo: Convo) -> None:
    _check(Dialect.CHAT, convo)


@PROFILE
@given(convos())
def test_responses_requests_roundtrip(convo: Convo) -> None:
    _check(Dialect.RESPONSES, convo)


@PROFILE
@given(convos())
def test_claude_requests_roundtrip(convo: Convo) -> None:
    _check(Dialect.CLAUDE, convo)


@PROFILE
@given(convos())
def test_gemini_requests_roundtrip(convo: Convo) -> None:
    _check(Dialect.GEMINI, convo)
