"""Opaque reasoning signatures through the running proxy: carried back to the family that made them,
dropped cleanly for one that cannot verify them.

A Codex-style client (openai `responses`) talks to a Claude upstream whose answer carries a signed
thinking block; the client returns the reasoning item in its next turn, and Claude receives its own
signature byte for byte. The same history sent to an OpenAI-compatible upstream carries no signature.
"""

from __future__ import annotations

from typing import Any

import openai

from tests.fakes.fixtures import CLIENT_KEY, Starter
from tests.fakes.upstreams import FakeUpstream

SIGNATURE = "EqQBCkYIBxgCKkB+sig/==\u00e9"  # the fake Claude upstream's signature (tests/fakes/upstreams.py)


def two_upstreams(base: str) -> str:
    return (
        f"claude-api-key:\n  - api-key: sk-ant-up\n    base-url: {base}\n    models: [{{name: up-claude}}]\n"
        f"openai-compatibility:\n  - name: fake\n    base-url: {base}/v1\n"
        "    api-key-entries:\n      - api-key: sk-up\n    models:\n      - name: up-chat\n"
    )


async def test_claude_signature_round_trips_through_a_responses_client(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(two_upstreams(base))
    oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    first = await oc.responses.create(model="up-claude", input="hi", include=["reasoning.encrypted_content"])
    kinds = [o.type for o in first.output]
    assert kinds == ["reasoning", "message"]
    reasoning = first.output[0]
    assert reasoning.encrypted_content and SIGNATURE in reasoning.encrypted_content
    history: list[Any] = [
        {"role": "user", "content": "hi"},
        *(o.model_dump(exclude_none=True) for o in first.output),
        {"role": "user", "content": "and more?"},
    ]

    second = await oc.responses.create(model="up-claude", input=history, reasoning={"effort": "medium"})
    assert second.output_text == "Hello from fake"
    claude_body = fake.seen[-1].json
    assistant = claude_body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE}
    assert claude_body["thinking"]["type"] == "enabled"

    third = await oc.responses.create(model="up-chat", input=history, reasoning={"effort": "medium"})
    assert third.output_text == "Hello from fake"
    chat_raw = fake.seen[-1].body
    assert fake.seen[-1].path == "/v1/chat/completions"
    assert b"sig/==" not in chat_raw and b"cpx1:" not in chat_raw  # an OpenAI upstream cannot verify it
    messages = fake.seen[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert "Hello from fake" in str(messages[1]["content"])
