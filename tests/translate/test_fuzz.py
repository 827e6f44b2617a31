"""Property: arbitrary JSON in any dialect's fields either translates or raises `TranslationError`.

Malformed client bodies must become a clean 400 in the dispatcher, never an unexpected exception
(a 500) or a half-built upstream body that cannot be serialised.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.convert import TranslationError, translate_request, translate_response

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)

KEYS = {
    Dialect.CHAT: ["messages", "tools", "tool_choice", "stop", "response_format", "reasoning_effort", "max_tokens"],
    Dialect.RESPONSES: ["input", "instructions", "tools", "tool_choice", "text", "reasoning", "max_output_tokens"],
    Dialect.CLAUDE: ["messages", "system", "tools", "tool_choice", "thinking", "output_config", "metadata"],
    Dialect.GEMINI: ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig"],
}
ITEM_KEYS = ["role", "content", "type", "text", "parts", "tool_calls", "functionCall", "call_id", "name"]
items = st.dictionaries(st.sampled_from(ITEM_KEYS), json_values, max_size=4)


@st.composite
def bodies(draw: st.DrawFn, dialect: Dialect) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS[dialect]), max_size=4, unique=True)):
        body[key] = draw(st.lists(items, max_size=3) | json_values)
    return body


def _check(body: dict[str, Any], src: Dialect) -> None:
    for dst in Dialect:
        if dst is src:
            continue
        try:
            out = translate_request(body, src, dst, model="m", stream=True)
        except TranslationError:
            continue
        jsonio.dumps(out)


FUZZ = settings(max_examples=80, deadline=None)


@FUZZ
@given(bodies(Dialect.CHAT))
def test_fuzz_chat(body: dict[str, Any]) -> None:
    _check(body, Dialect.CHAT)


@FUZZ
@given(bodies(Dialect.RESPONSES))
def test_fuzz_responses(body: dict[str, Any]) -> None:
    _check(body, Dialect.RESPONSES)


@FUZZ
@given(bodies(Dialect.CLAUDE))
def test_fuzz_claude(body: dict[str, Any]) -> None:
    _check(body, Dialect.CLAUDE)


@FUZZ
@given(bodies(Dialect.GEMINI))
def test_fuzz_gemini(body: dict[str, Any]) -> None:
    _check(body, Dialect.GEMINI)


@FUZZ
@given(
    st.sampled_from(list(Dialect)),
    st.dictionaries(
        st.sampled_from(["choices", "content", "output", "candidates", "usage", "usageMetadata"]),
        json_values,
        max_size=3,
    ),
)
def test_fuzz_responses_from_upstream(src: Dialect, body: dict[str, Any]) -> None:
    for dst in Dialect:
        if dst is not src:
            try:
                jsonio.dumps(translate_response(body, src, dst, model="m"))
            except TranslationError:
                pass
