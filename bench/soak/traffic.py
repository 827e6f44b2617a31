"""Client traffic for `make soak`: the four dialects through their official SDKs and raw HTTP, the
Responses WebSocket, streams and whole answers, and clients that leave mid-answer on purpose.

Each request asks one of the four models (one per upstream dialect, so most requests are
translated and the rest pass through) and ends as one `Result`: `ok`, `left` (the client hung up on
purpose), `error` (an answer the proxy may give while its upstreams misbehave) or `FAIL`. A request
that has not ended after `Traffic.timeout` seconds is a failure (a hang), whatever it was waiting for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anthropic
import openai
from answers import StreamReader, check_text, error_text, judge, whole_text
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

MODELS = {"chat": "soak-chat", "responses": "soak-responses", "claude": "soak-claude", "gemini": "soak-gemini"}
KINDS = {  # how each dialect's requests are made, with weights
    "chat": {"sdk": 1.0, "raw": 1.0},
    "responses": {"sdk": 0.8, "raw": 0.5, "ws": 0.7},
    "claude": {"sdk": 1.0, "raw": 1.0},
    "gemini": {"sdk": 1.0, "raw": 1.0},
}
SAME_DIALECT_SHARE = 0.4  # the rest is translated to one of the other three upstreams
STREAM_SHARE = 0.6


@dataclass(frozen=True)
class Result:
    dialect: str  # the client's
    kind: str  # sdk, raw or ws
    stream: bool
    upstream: str  # the dialect of the model asked for
    outcome: str  # ok, left, error, FAIL
    detail: str  # for error and FAIL: what happened
    seconds: float


class Left(Exception):
    """The client hung up on purpose."""


@dataclass
class Traffic:
    """Shared by every client task: where the proxy is, the clients, and the results so far."""

    base: str
    key: str
    timeout: float
    leave_share: float
    seed: int
    results: list[Result] = field(default_factory=list)
    in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: clients wait before their next request
    parked: int = 0  # clients waiting at the gate
    running: int = 0  # clients that have not finished
    _tags: itertools.count[int] = field(default_factory=itertools.count)
    _session: aiohttp.ClientSession | None = None
    _oai: openai.AsyncOpenAI | None = None
    _ant: anthropic.AsyncAnthropic | None = None
    _gem: genai.Client | None = None

    async def open(self) -> None:
        sdk_timeout = self.timeout * 2  # ours ends the request first: a hang is ours to see
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._oai = openai.AsyncOpenAI(base_url=self.base + "/v1", api_key=self.key, max_retries=0, timeout=sdk_timeout)
        self._ant = anthropic.AsyncAnthropic(base_url=self.base, api_key=self.key, max_retries=0, timeout=sdk_timeout)
        options = genai_types.HttpOptions(base_url=self.base, api_version="v1beta", timeout=int(sdk_timeout * 1000))
        self._gem = genai.Client(api_key=self.key, http_options=options)

    async def close(self) -> None:
        if self._oai is not None:
            await self._oai.close()
        if self._ant is not None:
            await self._ant.close()
        if self._gem is not None:
            await self._gem.aio.aclose()
        if self._session is not None:
            await self._session.close()

    async def quiesce(self, limit: float) -> None:
        """Hold every client at the gate (their requests in flight end first), for a quiet sample."""
        self.gate.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self.parked < self.running and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def wait_gate(self) -> None:
        if not self.gate.is_set():
            self.parked += 1
            try:
                await self.gate.wait()
            finally:
                self.parked -= 1

    def tag(self) -> str:
        return f"{next(self._tags):x}z{random.getrandbits(24):x}"

    async def worker(self, index: int, until: float) -> None:
        """Make requests one after another until `until` (the loop's clock)."""
        rng = random.Random(self.seed * 1000 + index)
        self.running += 1
        try:
            await self.requests(rng, until)
        finally:
            self.running -= 1

    async def requests(self, rng: random.Random, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            await self.wait_gate()
            dialect = rng.choice(list(MODELS))
            kinds = KINDS[dialect]
            kind = rng.choices(list(kinds), list(kinds.values()))[0]
            upstream = dialect if rng.random() < SAME_DIALECT_SHARE else rng.choice([d for d in MODELS if d != dialect])
            if kind == "ws":
                await self.websocket(rng, upstream, until)
                continue
            stream = rng.random() < STREAM_SHARE
            leave = rng.random() < self.leave_share
            result = await self.one(dialect, kind, stream, upstream, leave, rng)
            if result.detail.startswith("429"):  # as clients do: a moment before the next request
                await asyncio.sleep(rng.uniform(0.2, 1.0))

    async def one(
        self, dialect: str, kind: str, stream: bool, upstream: str, leave: bool, rng: random.Random
    ) -> Result:
        tag = self.tag()
        model = MODELS[upstream]
        prompt = f"Say something short. soak-tag-{tag}"
        make = getattr(self, f"{kind}_{dialect}")
        start = time.monotonic()
        self.in_flight += 1
        try:
            async with asyncio.timeout(self.timeout):
                if leave and not stream:  # hang up while the proxy waits for the upstream
                    task = asyncio.ensure_future(make(model, prompt, stream, False))
                    done, _ = await asyncio.wait({task}, timeout=rng.uniform(0.02, 1.0))
                    if not done:
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        raise Left
                    outcome, detail = task.result()
                else:
                    outcome, detail = await make(model, prompt, stream, leave)
                if outcome == "ok":
                    outcome, detail = check_text(detail, tag)
        except Left:
            outcome, detail = "left", ""
        except TimeoutError:
            outcome, detail = "FAIL", f"no end within {self.timeout:g} s (a hang)"
        except Exception as exc:  # whatever a client library raised that we did not expect
            outcome, detail = "FAIL", f"client saw {type(exc).__name__}: {str(exc)[:160]}"
        finally:
            self.in_flight -= 1
        result = Result(dialect, kind, stream, upstream, outcome, detail, time.monotonic() - start)
        self.results.append(result)
        return result

    # -- raw HTTP --------------------------------------------------------------------------------

    async def _raw(self, dialect: str, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        assert self._session is not None
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if dialect == "chat":
            url, body = "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": prompt}]}
        elif dialect == "responses":
            url, body = "/v1/responses", {"model": model, "input": prompt}
        elif dialect == "claude":
            messages = [{"role": "user", "content": prompt}]
            url, body = "/v1/messages", {"model": model, "max_tokens": 64, "messages": messages}
            headers["anthropic-version"] = "2023-06-01"
        else:
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            url, body = (
                f"/v1beta/models/{model}:{method}",
                {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
            )
        if stream and dialect != "gemini":
            body["stream"] = True
        async with self._session.post(self.base + url, data=json.dumps(body), headers=headers) as resp:
            if resp.status != 200:
                return judge(resp.status, error_text(await resp.read()))
            if not stream:
                data = await resp.read()
                try:
                    return "ok", whole_text(dialect, json.loads(data))
                except (ValueError, KeyError, TypeError, IndexError):
                    return "FAIL", f"a 200 that is not a {dialect} answer: {data[:80]!r}"
            if not resp.content_type.startswith("text/event-stream"):
                return "FAIL", f"a stream answered as {resp.content_type}"
            reader = StreamReader(dialect)
            async for raw in resp.content:
                reader.line(raw.decode().rstrip("\r\n"))
                if leave and reader.text:
                    raise Left
                if reader.error is not None:
                    break
            reader.finish()
            return stream_verdict(reader)

    async def raw_chat(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        return await self._raw("chat", model, prompt, stream, leave)

    async def raw_responses(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        return await self._raw("responses", model, prompt, stream, leave)

    async def raw_claude(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        return await self._raw("claude", model, prompt, stream, leave)

    async def raw_gemini(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        return await self._raw("gemini", model, prompt, stream, leave)

    # -- official SDKs ---------------------------------------------------------------------------

    async def sdk_chat(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        assert self._oai is not None
        messages: Any = [{"role": "user", "content": prompt}]
        try:
            if not stream:
                answer = await self._oai.chat.completions.create(model=model, messages=messages)
                return "ok", answer.choices[0].message.content or ""
            events = await self._oai.chat.completions.create(model=model, messages=messages, stream=True)
        except openai.APIStatusError as exc:
            return judge(exc.status_code, str(exc))
        text, finished = "", False
        try:
            async for chunk in events:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finished = finished or choice.finish_reason is not None
                if leave and text:
                    await events.close()
                    raise Left
        except openai.APIStatusError as exc:
            return judge(exc.status_code, str(exc), in_band=True)
        except openai.APIError as exc:  # the stream's in-band error
            return judge(0, str(exc), in_band=True)
        return ("ok", text) if finished else ("FAIL", "chat stream ended without a finish reason")

    async def sdk_responses(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        assert self._oai is not None
        try:
            if not stream:
                answer = await self._oai.responses.create(model=model, input=prompt)
                return "ok", answer.output_text
            events = await self._oai.responses.create(model=model, input=prompt, stream=True)
        except openai.APIStatusError as exc:
            return judge(exc.status_code, str(exc))
        text, finished = "", False
        try:
            async for event in events:
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.completed":
                    finished = True
                elif event.type == "error":
                    return judge(0, event.message, in_band=True)
                elif event.type == "response.failed":
                    return judge(0, str(event.response.error), in_band=True)
                if leave and text:
                    await events.close()
                    raise Left
        except openai.APIError as exc:
            return judge(0, str(exc), in_band=True)
        return ("ok", text) if finished else ("FAIL", "responses stream ended without response.completed")

    async def sdk_claude(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        assert self._ant is not None
        messages: Any = [{"role": "user", "content": prompt}]
        try:
            if not stream:
                answer = await self._ant.messages.create(model=model, max_tokens=64, messages=messages)
                return "ok", "".join(getattr(block, "text", "") for block in answer.content)
            events = await self._ant.messages.create(model=model, max_tokens=64, messages=messages, stream=True)
        except anthropic.APIStatusError as exc:
            return judge(exc.status_code, str(exc))
        text, finished = "", False
        try:
            async for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
                elif event.type == "message_stop":
                    finished = True
                if leave and text:
                    await events.close()
                    raise Left
        except anthropic.APIError as exc:  # the in-band `event: error`
            return judge(0, str(exc), in_band=True)
        return ("ok", text) if finished else ("FAIL", "claude stream ended without message_stop")

    async def sdk_gemini(self, model: str, prompt: str, stream: bool, leave: bool) -> tuple[str, str]:
        assert self._gem is not None
        models = self._gem.aio.models
        try:
            if not stream:
                answer = await models.generate_content(model=model, contents=prompt)
                return "ok", answer.text or ""
            events = await models.generate_content_stream(model=model, contents=prompt)
        except genai_errors.APIError as exc:
            return judge(exc.code, str(exc))
        text, finished, started = "", False, False
        try:
            async for chunk in events:
                started = True
                for cand in chunk.candidates or []:
                    for part in (cand.content.parts if cand.content else None) or []:
                        text += part.text or ""
                    finished = finished or cand.finish_reason is not None
                if leave and text:
                    await events.aclose()  # type: ignore[attr-defined]
                    raise Left
        except genai_errors.APIError as exc:  # google-genai sends the request at the first iteration
            return judge(exc.code, str(exc), in_band=started)
        return ("ok", text) if finished else ("FAIL", "gemini stream ended without a finish reason")

    # -- the Responses WebSocket -----------------------------------------------------------------

    async def websocket(self, rng: random.Random, upstream: str, until: float) -> None:
        """One socket, one to four `response.create` frames in turn, some chained to the last answer."""
        assert self._session is not None
        model = MODELS[upstream]
        headers = {"Authorization": f"Bearer {self.key}"}
        url = self.base.replace("http://", "ws://") + "/v1/responses"
        start = time.monotonic()

        def record(outcome: str, detail: str = "") -> None:
            self.results.append(Result("responses", "ws", True, upstream, outcome, detail, time.monotonic() - start))

        try:
            async with asyncio.timeout(self.timeout):
                ws = await self._session.ws_connect(url, headers=headers, autoping=True)
        except Exception as exc:
            record("FAIL", f"websocket did not open: {type(exc).__name__}: {exc}")
            return
        previous = None
        try:
            for _ in range(rng.randint(1, 4)):
                await self.wait_gate()  # (the socket stays open meanwhile)
                if asyncio.get_running_loop().time() >= until:
                    break
                start = time.monotonic()
                tag = self.tag()
                frame: dict[str, Any] = {
                    "type": "response.create",
                    "model": model,
                    "input": [{"role": "user", "content": [{"type": "input_text", "text": f"Hi. soak-tag-{tag}"}]}],
                }
                if previous is not None and rng.random() < 0.5:
                    frame["previous_response_id"] = previous
                leave = rng.random() < self.leave_share
                self.in_flight += 1
                try:
                    async with asyncio.timeout(self.timeout):
                        outcome, detail, previous = await self.ws_turn(ws, frame, leave, previous)
                    if outcome == "ok":
                        outcome, detail = check_text(detail, tag)
                except TimeoutError:
                    outcome, detail = "FAIL", f"no end within {self.timeout:g} s (a hang)"
                finally:
                    self.in_flight -= 1
                record(outcome, detail)
                if outcome in ("left", "FAIL"):
                    break
        finally:
            await ws.close()

    async def ws_turn(
        self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any], leave: bool, previous: str | None
    ) -> tuple[str, str, str | None]:
        await ws.send_str(json.dumps(frame))
        text = ""
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return "FAIL", f"socket ended mid-response ({msg.type.name} {ws.close_code})", previous
            event = json.loads(msg.data)
            kind = event.get("type")
            if kind == "response.output_text.delta":
                text += event["delta"]
                if leave:
                    await ws.close()
                    return "left", "", previous
            elif kind == "response.completed":
                return "ok", text, event["response"]["id"]
            elif kind == "error":
                message = error_text(json.dumps(event).encode())
                if "status" in event:  # routing's error, before anything was relayed
                    return (*judge(int(event["status"]), message), previous)
                return (*judge(0, message, in_band=True), previous)
            elif kind in ("response.failed", "response.incomplete"):
                return (*judge(0, json.dumps(event)[:300], in_band=True), previous)


def stream_verdict(reader: StreamReader) -> tuple[str, str]:
    if reader.error is not None:
        return judge(0, reader.error, in_band=True)
    if not reader.done:
        return "FAIL", f"{reader.dialect} stream ended without its end event and without an error"
    return "ok", reader.text


async def run_workers(traffic: Traffic, count: int, seconds: float, on_tick: Callable[[], Awaitable[None]]) -> None:
    """`count` client tasks for `seconds`; `on_tick` runs every second meanwhile."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    traffic.gate.set()
    tasks = [asyncio.ensure_future(traffic.worker(i, until)) for i in range(count)]
    while not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=1.0)
        await on_tick()
    for task in tasks:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
