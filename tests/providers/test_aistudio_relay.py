"""The AI Studio relay end to end: a WebSocket client plays the browser page on `/v1/ws`.

The page answers each `http_request` envelope the way CLIProxyAPI's userscripts do: a whole
`http_response` for `generateContent`, `stream_start` / `stream_chunk` / `stream_end` for
`streamGenerateContent?alt=sse` (the recorded Gemini SSE, chunk by chunk). While it is connected
it is a credential of provider `aistudio`, serving clients of every dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from cliproxy.config.write import atomic_write_text
from cliproxy.server.services import SERVICES
from tests.fakes.dialects import DIALECTS, MODEL, ask
from tests.fakes.fixtures import CLIENT_KEY, Proxy, Starter
from tests.fakes.upstreams import GEMINI_RESPONSE, events_of, wire_body
from tests.providers.world import models, proxy_with, until

ALIAS = f"oauth-model-alias:\n  aistudio:\n    - name: gemini-2.5-flash\n      alias: {MODEL}\n"


@dataclass
class Page:
    """The browser side: answers requests until told otherwise, recording every envelope."""

    ws: ClientConnection
    requests: list[dict[str, Any]] = field(default_factory=list)
    answer: str = "ok"  # "ok", "error", "silent", "drop-mid-stream"
    got_request: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                envelope = json.loads(raw)
                if envelope.get("type") != "http_request":
                    continue
                self.requests.append(envelope)
                self.got_request.set()
                await self.reply(envelope)

    async def reply(self, envelope: dict[str, Any]) -> None:
        rid, url = envelope["id"], envelope["payload"]["url"]
        send = self.ws.send
        if self.answer == "silent":
            return
        if self.answer == "error":
            await send(json.dumps({"id": rid, "type": "error", "payload": {"error": "quota gone", "status": 429}}))
            return
        if "streamGenerateContent" in url:
            headers = {"Content-Type": ["text/event-stream"]}
            await send(json.dumps({"id": rid, "type": "stream_start", "payload": {"status": 200, "headers": headers}}))
            for event in events_of(wire_body("gemini_stream.txt")):
                await send(json.dumps({"id": rid, "type": "stream_chunk", "payload": {"data": event.decode()}}))
                if self.answer == "drop-mid-stream":
                    await self.ws.close()
                    return
            await send(json.dumps({"id": rid, "type": "stream_end"}))
            return
        body = json.dumps(GEMINI_RESPONSE)
        payload = {"status": 200, "headers": {"Content-Type": "application/json"}, "body": body}
        await send(json.dumps({"id": rid, "type": "http_response", "payload": payload}))


@contextlib.asynccontextmanager
async def page(proxy: Proxy, *, key: str | None = CLIENT_KEY) -> AsyncIterator[Page]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with connect(proxy.url.replace("http://", "ws://") + "/v1/ws", additional_headers=headers) as ws:
        browser = Page(ws)
        task = asyncio.create_task(browser.serve())
        try:
            yield browser
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_connected_page_serves_every_dialect(start_proxy: Starter, tmp_path: Path) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    assert MODEL not in await models(proxy)
    async with page(proxy) as browser:
        await until(lambda: proxy.server.app[SERVICES].holder.current.catalog.runtime, "the relay credential")
        assert MODEL in await models(proxy)
        for dialect in DIALECTS:
            for stream in (False, True):
                assert (await ask(proxy, dialect, stream=stream)).text == "Hello from fake", (dialect, stream)
        for envelope in browser.requests:
            payload = envelope["payload"]
            assert payload["method"] == "POST" and payload["sent_at"].endswith("Z")
            assert payload["url"].startswith(
                "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:"
            )
            assert payload["headers"] == {"Content-Type": ["application/json"]}  # no key: the page signs in itself
            assert json.loads(payload["body"])["contents"]
        urls = [e["payload"]["url"] for e in browser.requests]
        assert sum(u.endswith(":streamGenerateContent?alt=sse") for u in urls) == 4
        (cred,) = proxy.server.app[SERVICES].holder.current.catalog.runtime
        assert cred.provider == "aistudio" and cred.id.startswith("aistudio-") and len(cred.id) == 25
    await until(lambda: not proxy.server.app[SERVICES].holder.current.catalog.runtime, "the credential to leave")
    assert MODEL not in await models(proxy)
    assert (await ask(proxy, "chat")).status == 400  # no credential serves it any more


async def test_pings_errors_and_a_page_that_goes_away(start_proxy: Starter, tmp_path: Path) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    async with page(proxy) as browser:
        await until(lambda: proxy.server.app[SERVICES].holder.current.catalog.runtime, "the relay credential")
        browser.answer = "error"
        outcome = await ask(proxy, "gemini")
        assert outcome.status == 429 and "quota gone" in outcome.error
        await proxy.health.clear()
        browser.answer = "drop-mid-stream"
        outcome = await ask(proxy, "chat", stream=True)
        assert outcome.error == "upstream stream broke: the AI Studio relay disconnected"  # its in-band error
    async with page(proxy) as browser:
        browser.answer = "silent"
        pending = asyncio.ensure_future(ask(proxy, "gemini"))
        await asyncio.wait_for(browser.got_request.wait(), 10)
    outcome = await asyncio.wait_for(pending, 10)
    assert outcome.status is not None and outcome.status >= 500  # the page left with the request waiting


async def test_ping_gets_pong(start_proxy: Starter, tmp_path: Path) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths")
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with connect(proxy.url.replace("http://", "ws://") + "/v1/ws", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "p-9"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"id": "p-9", "type": "pong"}


async def test_a_second_connection_replaces_the_first(start_proxy: Starter, tmp_path: Path) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    holder = proxy.server.app[SERVICES].holder
    async with page(proxy) as first:
        await until(lambda: holder.current.catalog.runtime, "the first credential")
        (one,) = holder.current.catalog.runtime
        async with page(proxy) as second:
            await until(lambda: holder.current.catalog.runtime and holder.current.catalog.runtime[0] is not one, "")
            await asyncio.wait_for(first.ws.wait_closed(), 5)
            assert first.ws.close_code == 1001
            assert (await ask(proxy, "claude")).text == "Hello from fake"
            assert first.requests == [] and len(second.requests) == 1
            (two,) = holder.current.catalog.runtime
            assert two.id != one.id


async def test_switching_ws_auth_on_closes_open_pages_and_their_credential(
    start_proxy: Starter, tmp_path: Path
) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths", "ws-auth: false\n" + ALIAS)
    services = proxy.server.app[SERVICES]
    async with page(proxy, key=None) as browser:
        await until(lambda: services.holder.current.catalog.runtime, "the relay credential")
        path = services.holder.current.config_path
        atomic_write_text(path, path.read_text().replace("ws-auth: false", "ws-auth: true"))
        assert (await services.reloader.reload_now()).ok
        await asyncio.wait_for(browser.ws.wait_closed(), 5)
        assert browser.ws.close_code == 1008
    await until(lambda: not services.holder.current.catalog.runtime, "the credential to leave")


async def test_reloads_keep_a_connected_page(start_proxy: Starter, tmp_path: Path) -> None:
    proxy = await proxy_with(start_proxy, tmp_path / "auths", ALIAS)
    services = proxy.server.app[SERVICES]
    async with page(proxy):
        await until(lambda: services.holder.current.catalog.runtime, "the relay credential")
        path = services.holder.current.config_path
        atomic_write_text(path, path.read_text().replace("alias: up-model", "alias: renamed-model"))
        assert (await services.reloader.reload_now()).ok
        assert services.holder.current.catalog.runtime  # the reload kept the page's credential
        assert "renamed-model" in await models(proxy) and MODEL not in await models(proxy)
