"""Shared by the WebSocket tests: proxy configs per upstream kind and a raw `websockets` client."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.fakes.fixtures import CLIENT_KEY, Proxy

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def codex_config(base: str, *keys: str, models: tuple[str, ...] = ("gpt-fake",)) -> str:
    """`codex-api-key` entries (Responses over HTTP SSE) pointing at the fake upstream."""
    names = ", ".join(f"{{name: {m}}}" for m in models)
    return "codex-api-key:\n" + "".join(
        f"  - api-key: {key}\n    base-url: {base}/v1\n    models: [{names}]\n" for key in keys or ("sk-codex-up",)
    )


def claude_config(base: str) -> str:
    return f"claude-api-key:\n  - api-key: sk-ant-up\n    base-url: {base}\n    models: [{{name: gpt-fake}}]\n"


def gemini_config(base: str) -> str:
    return f"gemini-api-key:\n  - api-key: AIza-up\n    base-url: {base}\n    models: [{{name: gpt-fake}}]\n"


def compat_config(base: str) -> str:
    """An `openai-compatibility` provider (Chat Completions upstream)."""
    return (
        f"openai-compatibility:\n  - name: fake\n    base-url: {base}/v1\n"
        "    api-key-entries:\n      - api-key: sk-compat-up\n    models:\n      - name: gpt-fake\n"
    )


def ws_url(proxy: Proxy, path: str = "/v1/responses") -> str:
    return proxy.url.replace("http://", "ws://") + path


def raw_connect(proxy: Proxy, path: str = "/v1/responses", **kwargs: Any) -> Any:
    headers = kwargs.pop("additional_headers", {"Authorization": f"Bearer {CLIENT_KEY}"})
    return connect(ws_url(proxy, path), additional_headers=headers, **kwargs)


async def turn(ws: ClientConnection, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one frame and collect the events up to and including its terminal event."""
    await ws.send(json.dumps(frame))
    events: list[dict[str, Any]] = []
    while True:
        message = await ws.recv()
        events.append(json.loads(message))
        if events[-1]["type"] in TERMINAL:
            return events


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
