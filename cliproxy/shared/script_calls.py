"""Calls of one Lua script from many concurrent requests, sent together: one pipeline per loop turn.

Each admitted request of a limited key runs the admission script once. redis-py spends most of a
call's CPU on its own bookkeeping (a connection from the pool, the command, the reply), not on the
network, so calls made in the same turn of the event loop are queued and sent as one pipeline: under
load a request's share is a fraction of a lone call, and a lone request waits no longer than it
would have. The calls are packed by hiredis and written in one go on one pooled connection. A script Redis does
not know (it restarted) is loaded and the batch's calls sent once more.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from cliproxy.shared.connection import RedisLink


class ScriptCalls:
    def __init__(self, link: RedisLink, source: str) -> None:
        self.link = link
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """The script's reply, or its error (a failure of the whole batch, such as a lost connection:
        every call of the batch gets it)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._send)
        return future

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._execute(batch)
            if any(_unknown_script(reply) for reply in replies):
                await self.link.client.script_load(self.source)
                replies = await self._execute(batch)
        except BaseException as exc:
            # every call of the batch gets the failure, whatever it is (a link error, or a bug such
            # as an argument that cannot be packed): a call left unresolved would wait forever
            failure = exc if isinstance(exc, Exception) else ConnectionError("shared state: cancelled")
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        sha = self.sha
        return await self.link.send([("EVALSHA", sha, len(keys), *keys, *args) for keys, args, _ in batch])


def _unknown_script(reply: Any) -> bool:
    return isinstance(reply, Exception) and type(reply).__name__ == "NoScriptError"
