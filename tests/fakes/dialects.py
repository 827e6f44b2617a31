"""One request per client dialect through the official SDKs, and one provider section per upstream
dialect, for tests that run the same scenario in all four dialects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.fixtures import CLIENT_KEY, Proxy

DIALECTS = ("chat", "responses", "claude", "gemini")
MODEL = "up-model"
CLIENT_TIMEOUT = 20.0  # seconds: far beyond every bound the tests set, so a hang fails the test


def provider(dialect: str, base: str, keys: tuple[str, ...] = ("sk-up-a",), extra: str = "") -> str:
    """The config section of the upstream kind that speaks `dialect`: one credential per key.

    `extra` (indented YAML lines) goes into every entry (e.g. an `upstream-timeouts` block)."""
    if dialect == "chat":
        entries = "".join(f"      - api-key: {k}\n" for k in keys)
        return (
            f"openai-compatibility:\n  - name: raw\n    base-url: {base}/v1\n{extra}"
            f"    api-key-entries:\n{entries}    models:\n      - name: {MODEL}\n"
        )
    section, url = {
        "responses": ("codex-api-key", f"{base}/v1"),
        "claude": ("claude-api-key", base),
        "gemini": ("gemini-api-key", base),
    }[dialect]
    entries = "".join(f"  - api-key: {k}\n    base-url: {url}\n    models: [{{name: {MODEL}}}]\n{extra}" for k in keys)
    return f"{section}:\n{entries}"


class StreamError(Exception):
    """A Responses stream that ended with an `error` event (or without its completion)."""


@dataclass
class Outcome:
    """What the client SDK made of one request: the text, or the HTTP status of the error it raised."""

    text: str | None = None
    status: int | None = None
    error: str = ""


async def ask(proxy: Proxy, dialect: str, *, stream: bool = False, text: str = "hi") -> Outcome:
    """One request in `dialect` through its official SDK; an error becomes its status and message."""
    try:
        return Outcome(text=await _ask(proxy, dialect, stream, text))
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        return Outcome(status=exc.status_code, error=str(exc))
    except genai_errors.APIError as exc:
        return Outcome(status=exc.code, error=str(exc))
    except (openai.APIError, anthropic.APIError) as exc:  # an in-band error event of a stream
        return Outcome(status=_status_in(exc.body), error=str(exc))
    except StreamError as exc:
        return Outcome(error=str(exc))


def _status_in(body: Any) -> int | None:
    """The status an in-band error event carries (its `code`/`status`), as far as it says one."""
    if isinstance(body, dict):
        error = body.get("error", body)
        for key in ("status", "code"):
            value = error.get(key) if isinstance(error, dict) else None
            if isinstance(value, int):
                return value
        kind = error.get("type") if isinstance(error, dict) else None
        return {"timeout_error": 504, "api_error": 500}.get(kind) if isinstance(kind, str) else None
    return None


async def _ask(proxy: Proxy, dialect: str, stream: bool, text: str) -> str:
    if dialect in ("chat", "responses"):
        oc = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=CLIENT_TIMEOUT)
        if dialect == "chat":
            messages: Any = [{"role": "user", "content": text}]
            if not stream:
                answer = await oc.chat.completions.create(model=MODEL, messages=messages)
                return answer.choices[0].message.content or ""
            parts = []
            async for piece in await oc.chat.completions.create(model=MODEL, messages=messages, stream=True):
                if piece.choices and piece.choices[0].delta.content:
                    parts.append(piece.choices[0].delta.content)
            return "".join(parts)
        if not stream:
            return (await oc.responses.create(model=MODEL, input=text)).output_text
        async for event in await oc.responses.create(model=MODEL, input=text, stream=True):
            if event.type == "error":  # the SDK yields a Responses error event rather than raising it
                raise StreamError(event.message)
            if event.type == "response.completed":
                return event.response.output_text
        raise StreamError("the stream ended without response.completed")
    if dialect == "claude":
        ac = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0, timeout=CLIENT_TIMEOUT)
        messages = [{"role": "user", "content": text}]
        if not stream:
            message = await ac.messages.create(model=MODEL, max_tokens=16, messages=messages)
            return "".join(b.text for b in message.content if b.type == "text")
        async with ac.messages.stream(model=MODEL, max_tokens=16, messages=messages) as events:
            return await events.get_final_text()
    gc = genai.Client(
        api_key=CLIENT_KEY,
        http_options=types.HttpOptions(base_url=proxy.url, api_version="v1beta", timeout=int(CLIENT_TIMEOUT * 1000)),
    )
    if not stream:
        return (await gc.aio.models.generate_content(model=MODEL, contents=text)).text or ""
    parts = []
    async for piece in await gc.aio.models.generate_content_stream(model=MODEL, contents=text):
        parts.append(piece.text or "")
    return "".join(parts)
