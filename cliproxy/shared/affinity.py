"""Session-affinity bindings in Redis, read from a local mirror.

`bound` stays synchronous and local: dispatch asks it before every pick of a session's request,
and a round trip there would sit on the latency path of each of them. So, as for cooldowns, every
process keeps a mirror (`LocalSessionAffinity`, keyed by the session's SHA-256, never the session
itself) that follows the event channel and is reloaded when Redis comes back. `bind` updates the
mirror at once and queues the Redis write and its event behind the answer; a use of a binding
pushes its expiry forward in Redis at most every quarter of its TTL.

Keys: `affinity:<session sha256>:<model>` = `<credential id>|<ttl>`, expiring with the binding.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cliproxy import jsonio
from cliproxy.routing.affinity import BindingView, LocalSessionAffinity, SessionAffinity
from cliproxy.shared.connection import RedisLink
from cliproxy.shared.writes import WriteBehind

SCAN_BATCH = 1000


class RedisSessionAffinity:
    def __init__(self, link: RedisLink, writes: WriteBehind, mirror: LocalSessionAffinity) -> None:
        self.link = link
        self.writes = writes
        self.mirror = mirror
        self._touched: dict[tuple[str, str], float] = {}
        link.on_event("affinity", self._on_bind)
        link.on_up(self.resync)

    def _key(self, digest: str, model: str) -> str:
        return self.link.key("affinity", digest, model)

    def bound(self, model: str, session: str) -> str | None:
        digest = _digest(session)
        bound = self.mirror.bound(model, digest)
        if bound is not None:
            entry = self.mirror.entries[(model, digest)]
            now = self.mirror.clock()
            last = self._touched.get((model, digest), 0.0)
            if now - last >= entry.ttl / 4:
                self._touched[(model, digest)] = now
                name, ms = self._key(digest, model), int(entry.ttl * 1000)
                self.writes.add("PEXPIRE", name, ms)
        return bound

    async def bind(self, model: str, session: str, credential_id: str, ttl: float) -> None:
        digest = _digest(session)
        self.mirror.put(model, digest, credential_id, ttl)
        self._touched[(model, digest)] = self.mirror.clock()
        if len(self._touched) > self.mirror.capacity:
            self._touched.clear()
        name, channel = self._key(digest, model), self.link.channel
        fields = {"model": model, "session": digest, "cred": credential_id, "ttl": ttl}
        event = jsonio.dumps({"kind": "affinity", "node": self.link.node, **fields})
        self.writes.add("SET", name, f"{credential_id}|{ttl!r}", "PX", max(1, int(ttl * 1000)))
        self.writes.add("PUBLISH", channel, event)

    def snapshot(self) -> list[BindingView]:
        now = self.mirror.clock()
        return [
            BindingView(digest[:12], model, entry.credential_id, round(entry.until - now, 1))
            for (model, digest), entry in self.mirror.entries.items()
            if entry.until > now
        ]

    def _on_bind(self, event: dict[str, Any]) -> None:
        if event.get("node") != self.link.node:
            self.mirror.put(event["model"], event["session"], event["cred"], float(event["ttl"]))

    async def resync(self) -> None:
        """Reload the bindings Redis holds (called each time the link comes up)."""
        client = self.link.client
        prefix = self.link.key("affinity", "")
        names = [name async for name in client.scan_iter(match=prefix + "*", count=SCAN_BATCH)]
        if not names:
            return
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.get(name)
            pipe.pttl(name)
        replies = await pipe.execute()
        for name, value, pttl in zip(names, replies[::2], replies[1::2], strict=True):
            if not value or pttl <= 0:
                continue
            digest, _, model = name.decode()[len(prefix) :].partition(":")
            cred, _, ttl = value.decode().rpartition("|")
            self.mirror.put(model, digest, cred, float(ttl))
            entry = self.mirror.entries[(model, digest)]
            entry.until = self.mirror.clock() + pttl / 1000


def _digest(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()


def _check(affinity: RedisSessionAffinity) -> SessionAffinity:
    return affinity  # the type checker holds the implementation to the protocol
