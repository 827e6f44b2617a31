"""Properties of the per-socket conversation rebuild (`cliproxy.api.responses_chain`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.api.responses_chain import ChainMemory, FrameError, carries_history, merge

ids = st.sampled_from([f"item_{n}" for n in range(8)])
user_items = st.builds(
    lambda ident, text: {"type": "message", "id": ident, "role": "user", "content": text},
    ids,
    st.text(max_size=5),
)
outputs = st.builds(
    lambda call: {"type": "function_call_output", "call_id": call, "output": "ok"},
    st.sampled_from(["call_1", "call_2"]),
)
new_items = st.lists(st.one_of(user_items, outputs), max_size=6)


def unique_by_id(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.get("id") not in seen:
            out.append(item)
            if "id" in item:
                seen.add(item["id"])
    return out


@given(st.lists(user_items, max_size=6).map(unique_by_id), new_items)
def test_merge_keeps_the_transcript_and_never_repeats_a_remembered_item(
    transcript: list[dict[str, Any]], new: list[dict[str, Any]]
) -> None:
    merged = merge(transcript, new)
    assert merged[: len(transcript)] == transcript
    known = {item["id"] for item in transcript}
    assert merged[len(transcript) :] == [item for item in new if item.get("id") not in known]
    assert not carries_history(new)


@given(new_items)
def test_a_chained_frame_is_remembered_input_then_output_then_new_input(new: list[dict[str, Any]]) -> None:
    memory = ChainMemory()
    first = memory.plan({"type": "response.create", "model": "m", "input": "hi", "tools": [{"type": "function"}]})
    answer = {"type": "message", "id": "msg_answer", "role": "assistant", "content": []}
    memory.remember("resp_1", first, [answer])
    plan = memory.plan({"type": "response.create", "previous_response_id": "resp_1", "input": new})
    assert plan.body["input"][:2] == [*first.items, answer]
    assert plan.body["model"] == "m" and plan.body["tools"] == [{"type": "function"}] and plan.body["stream"] is True
    assert "previous_response_id" not in plan.body and "type" not in plan.body


def test_unknown_previous_response_is_409() -> None:
    with pytest.raises(FrameError) as info:
        ChainMemory().plan({"type": "response.create", "model": "m", "previous_response_id": "resp_nope"})
    assert info.value.status == 409 and info.value.code == "previous_response_not_found"
