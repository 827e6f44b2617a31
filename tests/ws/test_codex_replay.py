"""Replay the recorded Codex CLI 0.169 WebSocket sessions through the proxy.

The frames and upgrade headers are exactly what Codex sent (`fixtures/codex_exec_ws*.jsonl`); only
the ids Codex got from the recording server (`previous_response_id`, the tool `call_id`) are swapped
for the ones this proxy returned. What matters is what the upstream receives: the full conversation
Codex would have POSTed in HTTP mode (`codex_ws_404_fallback.jsonl` shows that body), every time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import WIRE, FakeUpstream
from tests.ws.helpers import claude_config, codex_config, raw_connect, turn

FIXTURES = WIRE.parent / "captures"  # copies of ../shared/fixtures
HOP_BY_HOP = {"host", "connection", "upgrade", "authorization"}


def session(name: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The upgrade headers (minus hop-by-hop and the key) and the frames of one recorded session."""
    records = [json.loads(line) for line in Path(FIXTURES / name).read_text().splitlines()]
    (opened,) = [r for r in records if r["kind"] == "ws-open"]
    headers = {k: v for k, v in opened["headers"] if k.lower() not in HOP_BY_HOP and not k.lower().startswith("sec-")}
    return headers, [r["frame"] for r in records if r["kind"] == "ws-recv"]


def fallback_body() -> dict[str, Any]:
    """What Codex POSTs once it gives up on WebSockets (same CLI, same kind of session)."""
    records = [json.loads(line) for line in Path(FIXTURES / "codex_ws_404_fallback.jsonl").read_text().splitlines()]
    (post,) = [r for r in records if r.get("method") == "POST"]
    body: dict[str, Any] = post["body"]
    return body


def shape(items: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(item.get("type", "message"), item.get("role")) for item in items]


async def replay(proxy: Any, name: str) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Send every recorded frame in order, re-pointing ids at this proxy's answers."""
    headers, frames = session(name)
    sent: list[dict[str, Any]] = []
    answers: list[list[dict[str, Any]]] = []
    async with raw_connect(proxy, additional_headers={**headers, "Authorization": f"Bearer {CLIENT_KEY}"}) as ws:
        for recorded in frames:
            frame = dict(recorded)
            if "previous_response_id" in frame:
                last = answers[-1][-1]
                frame["previous_response_id"] = last["response"]["id"]
                calls = [o["call_id"] for o in last["response"]["output"] if o["type"] == "function_call"]
                frame["input"] = [
                    {**item, "call_id": calls[0]} if item.get("type") == "function_call_output" else item
                    for item in frame["input"]
                ]
            sent.append(frame)
            answers.append(await turn(ws, frame))
    return sent, answers


async def test_codex_exec_session_sends_the_full_conversation_upstream(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(codex_config(base))
    (warm, frame), (warm_answer, answer) = await replay(proxy, "codex_exec_ws.jsonl")
    assert warm["generate"] is False
    assert [e["type"] for e in warm_answer] == ["response.created", "response.completed"]
    assert warm_answer[-1]["response"]["output"] == []
    assert answer[-1]["type"] == "response.completed"

    (seen,) = fake.seen  # the warm-up never reached the upstream
    expected = {k: v for k, v in frame.items() if k not in ("type", "previous_response_id")}
    expected["input"] = warm["input"] + frame["input"]
    assert seen.json == expected  # every other field exactly as Codex sent it
    assert set(seen.json) == set(fallback_body())  # the same fields Codex POSTs in HTTP mode
    assert shape(seen.json["input"]) == shape(fallback_body()["input"])
    assert seen.header("originator") == "codex_exec"
    assert seen.header("User-Agent").startswith("codex_exec/0.169.0")  # type: ignore[union-attr]
    assert "responses_websockets" not in (seen.header("OpenAI-Beta") or "")
    assert seen.header("Authorization") == "Bearer sk-codex-up"


@pytest.mark.parametrize("kind", ["codex", "claude"])
async def test_codex_tool_loop_session_rebuilds_every_turn(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, kind: str
) -> None:
    fake, base = upstream
    fake.tool_loop = True
    if kind == "codex":
        config = codex_config(base, models=("gpt-fake", "codextool"))
    else:
        config = claude_config(base).replace("gpt-fake", "codextool")
    proxy = await start_proxy(config)
    (warm, ask, result), answers = await replay(proxy, "codex_exec_ws_toolloop.jsonl")
    assert [a[-1]["type"] for a in answers] == ["response.completed"] * 3
    call = answers[1][-1]["response"]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert "".join(e.get("delta", "") for e in answers[2] if e["type"] == "response.output_text.delta") == (
        "Hello from fake"
    )

    first, second = (seen.json for seen in fake.seen)
    if kind == "codex":
        assert first["input"] == warm["input"] + ask["input"]
        assert second["input"] == warm["input"] + ask["input"] + [call] + result["input"]
        for body, frame in ((first, ask), (second, result)):
            assert body["tools"] == frame["tools"] and body["client_metadata"] == frame["client_metadata"]
            assert body["stream"] is True and not {"type", "generate", "previous_response_id"} & body.keys()
    else:
        system = " ".join(block["text"] for block in second["system"])
        assert warm["input"][0]["content"][0]["text"][:60] in system  # the warm-up's developer message
        turns = [[m["role"], [b["type"] for b in m["content"]]] for m in second["messages"]]
        assert turns == [["user", ["text", "text"]], ["assistant", ["tool_use"]], ["user", ["tool_result"]]]
        assert second["messages"][2]["content"][0]["tool_use_id"] == call["call_id"] == "toolu_fake1"
        assert "hi" in json.dumps(second["messages"][2]["content"][0]["content"])
