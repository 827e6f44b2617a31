"""`nonstream-keepalive-interval`: newlines while a slow non-stream answer is awaited.

Only non-streaming Claude, Gemini and Responses generations get them, and only once the wait has
outlasted one interval: a fast answer (an error too) keeps its real status and exact bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cliproxy.api.keepalive import hold_open
from tests.api import test_claude_passthrough as claude
from tests.api import test_gemini_passthrough as gemini
from tests.api import test_responses_passthrough as responses
from tests.api.test_chat import compat
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

SLOW = "nonstream-keepalive-interval: 0.3\n"  # the fake answers after 1 s: about three newlines
CALM = "nonstream-keepalive-interval: 2\n"  # longer than any fast answer takes, even on a slow machine
HEADERS = {
    "Authorization": f"Bearer {CLIENT_KEY}",
    "x-api-key": CLIENT_KEY,
    "x-goog-api-key": CLIENT_KEY,
    "anthropic-version": "2023-06-01",
}
CLAUDE_BODY: dict[str, object] = {
    "model": "claude-fake-1",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI_BODY: dict[str, object] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
RESPONSES_BODY: dict[str, object] = {"model": "gpt-fake", "input": "hi"}
# (route, body, the provider list that speaks the route's dialect)
ROUTES: dict[str, tuple[str, dict[str, object], Callable[..., str]]] = {
    "claude": ("/v1/messages", CLAUDE_BODY, claude.claude_keys),
    "gemini": ("/v1beta/models/gemini-fake:generateContent", GEMINI_BODY, gemini.gemini_keys),
    "responses": ("/v1/responses", RESPONSES_BODY, responses.codex_keys),
}


async def ask(proxy: Proxy, path: str, body: dict[str, object]) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.post(proxy.url + path, json=body, headers=HEADERS) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.read()


async def start(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, dialect: str, extra: str
) -> tuple[FakeUpstream, Proxy, str, dict[str, object]]:
    """(the fake, the proxy with `extra` and one credential of `dialect` on it, its route, a body)."""
    fake, base = upstream
    path, body, keys = ROUTES[dialect]
    return fake, await start_proxy(extra + keys(base)), path, body


@pytest.mark.parametrize("dialect", sorted(ROUTES))
async def test_slow_answer_follows_newlines_byte_for_byte(
    dialect: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, proxy, path, body = await start(upstream, start_proxy, dialect, SLOW)
    fast = await ask(proxy, path, body)
    fake.delay = 1.0
    status, content_type, slow = await ask(proxy, path, body)
    assert (status, content_type) == (200, "application/json")
    newlines = len(slow) - len(slow.lstrip(b"\n"))
    assert newlines >= 2  # at 0.3 s, 0.6 s (and 0.9 s): the first comes before the answer is known
    assert fast[0] == 200 and slow[newlines:] == fast[2].lstrip(b"\n")  # a cold first answer may be slow too


async def test_sdks_parse_answers_after_newlines(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    fake.delay = 1.0
    proxy = await start_proxy(SLOW + claude.claude_keys(base) + gemini.gemini_keys(base) + responses.codex_keys(base))
    message, content, response = await asyncio.gather(
        claude.client(proxy).messages.create(
            model="claude-fake-1", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        ),
        gemini.client(proxy).aio.models.generate_content(model="gemini-fake", contents="hi"),
        responses.client(proxy).responses.create(model="gpt-fake", input="hi"),
    )
    assert [block.type for block in message.content] == ["thinking", "text"] and message.usage.output_tokens == 3
    assert content.text == "Hello from fake"
    assert response.output_text
    assert [r.status for r in proxy.usage.recent()] == [200, 200, 200]


@pytest.mark.parametrize("dialect", sorted(ROUTES))
async def test_fast_answers_are_untouched(
    dialect: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    """Within the first interval nothing is committed: no newline, and an error keeps its status."""
    fake, proxy, path, body = await start(upstream, start_proxy, dialect, CALM)
    fake.fail(400, dialect=dialect)
    failed, answered = await ask(proxy, path, body), await ask(proxy, path, body)
    assert (failed[0], failed[2][:1]) == (400, b"{")
    assert (answered[0], answered[2][:1]) == (200, b"{")


async def test_error_after_newlines_is_the_dialects_error_object(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, proxy, _, _ = await start(upstream, start_proxy, "claude", SLOW)
    fake.delay = 1.0
    fake.fail(400, dialect="claude")
    status, _, answer = await ask(proxy, "/v1/messages", CLAUDE_BODY)
    assert status == 200 and answer.startswith(b"\n")  # committed: the status can no longer change
    error = json.loads(answer)
    assert error["type"] == "error" and error["error"]["message"] == "fake upstream error 400"


# What the anthropic SDK sends to count_tokens: no `max_tokens`, which Anthropic's count endpoint refuses.
COUNT_BODY = {k: v for k, v in CLAUDE_BODY.items() if k != "max_tokens"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages", {**CLAUDE_BODY, "stream": True}),
        ("/v1/messages/count_tokens", COUNT_BODY),
    ],
    ids=["chat", "claude-stream", "count-tokens"],
)
async def test_only_non_stream_generations_of_three_dialects(
    path: str, body: dict[str, object], upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(SLOW + claude.claude_keys(base) + compat(base))
    fake.delay = 1.0
    status, _, answer = await ask(proxy, path, body)
    assert status == 200 and answer[:1] in (b"{", b"e")  # a JSON object or `event: message_start`


async def test_client_that_leaves_cancels_the_upstream_request(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, proxy, _, _ = await start(upstream, start_proxy, "claude", SLOW)
    fake.delay = 5.0
    async with aiohttp.ClientSession() as http:
        resp = await http.post(proxy.url + "/v1/messages", json=CLAUDE_BODY, headers=HEADERS)
        assert resp.status == 200 and await resp.content.readany() == b"\n"
        resp.close()
    for _ in range(100):
        if proxy.usage.recent():
            break
        await asyncio.sleep(0.02)
    assert [r.status for r in proxy.usage.recent()] == [499]


async def test_a_failed_newline_cancels_the_answer(aiohttp_server: Any) -> None:
    """Without handler cancellation the departure shows only as a failed write: that cancels too."""
    answers: list[asyncio.Future[None]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        answers.append(asyncio.get_running_loop().create_future())
        response = await hold_open(request, answers[0], 0.1)
        assert response is not None
        return response

    app = web.Application(handler_args={"handler_cancellation": False})
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"http://{server.host}:{server.port}/")
        assert await resp.content.readany() == b"\n"
        resp.close()
    for _ in range(150):
        if answers[0].cancelled():
            break
        await asyncio.sleep(0.02)
    assert answers[0].cancelled()
