"""The official SDK of each client dialect, pointed at the running proxy, for the translation tests.

Each `send_*` makes one request the way a user of that SDK would and returns what the SDK parsed;
`received` returns what the fake upstream got, after checking that the upstream accepted it (the
fake refuses what the real API refuses, see `tests/fakes/wire_rules.py`).
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types

from tests.fakes.fixtures import CLIENT_KEY, Proxy
from tests.fakes.upstreams import FakeUpstream
from tests.translate.test_proxy_matrix import MODEL

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
MP4 = "AAAAGGZ0eXBtcDQyAAAAAG1wNDJpc29t"
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def openai_client(proxy: Proxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def anthropic_client(proxy: Proxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)


def gemini_client(proxy: Proxy) -> genai.Client:
    return genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta"))


async def send_chat(proxy: Proxy, messages: list[Any], **kwargs: Any) -> Any:
    return await openai_client(proxy).chat.completions.create(model=MODEL, messages=messages, **kwargs)


async def send_responses(proxy: Proxy, items: Any, **kwargs: Any) -> Any:
    return await openai_client(proxy).responses.create(model=MODEL, input=items, **kwargs)


async def send_claude(proxy: Proxy, messages: list[Any], **kwargs: Any) -> Any:
    kwargs.setdefault("max_tokens", 256)
    return await anthropic_client(proxy).messages.create(model=MODEL, messages=messages, **kwargs)


async def send_gemini(proxy: Proxy, contents: list[types.Content], **config: Any) -> Any:
    settings = types.GenerateContentConfig(
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True), **config
    )
    return await gemini_client(proxy).aio.models.generate_content(model=MODEL, contents=contents, config=settings)


def received(fake: FakeUpstream) -> Any:
    """The last request body the upstream received; the upstream must have accepted every request."""
    assert fake.problems == [], f"the real API would refuse this request: {fake.problems}"
    assert fake.seen, "the upstream was never called"
    return fake.seen[-1].json


def gemini_tool(name: str = "get_weather", schema: dict[str, Any] | None = None) -> types.Tool:
    declaration = types.FunctionDeclaration(name=name, parameters_json_schema=schema or PARAMS)
    return types.Tool(function_declarations=[declaration])


def chat_tool(name: str = "get_weather", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": schema or PARAMS}}


def responses_tool(name: str = "get_weather", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": schema or PARAMS, "strict": False}


def claude_tool(name: str = "get_weather", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "input_schema": schema or PARAMS}
