"""Credential cooldowns in Redis, with a local mirror so picking a credential costs no round trip.

The reads of `CredentialHealth` (`cooling`, `remaining`, `earliest`, `listable`, `snapshot`) are
synchronous and on the hot path: they read `mirror`, a `LocalCredentialHealth` that every process
keeps current from the event channel and reloads whole (`resync`) each time Redis comes back.
The changes write to the `cooldowns` hash (field `<credential id> US <model>`, value
`<until epoch>|<reason>|<status>|<level>`) and publish in the same Lua script. `failed` computes the
cooldown with `routing.health.cooldown_for` from the entry it knows and writes it only if Redis
still holds that entry (compare and set), else learns the newer one and computes again, so two
processes failing at once advance a 429 backoff level once, not twice. `clear` (`reset-quota`)
drops the entries in Redis and every process drops them from its mirror.

While Redis is down the mirror is the whole truth (in-process cooldowns); on the way back up,
the entries Redis holds win and this process's newer local ones are written up.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from cliproxy import jsonio
from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.failures import Failure
from cliproxy.routing.health import (
    Cooldown,
    CooldownView,
    CoolingSettings,
    CredentialHealth,
    LocalCredentialHealth,
    cooldown_for,
)
from cliproxy.shared.connection import RedisLink

SEP = "\x1f"
SET_IF = """
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return {1, cur} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return {0, ''}
"""
DROP = """
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 0
"""


class RedisCredentialHealth:
    """`CredentialHealth` shared through Redis (see the module docstring)."""

    def __init__(self, link: RedisLink, mirror: LocalCredentialHealth) -> None:
        self.link = link
        self.mirror = mirror
        self.clock = mirror.clock
        self.hash = link.key("cooldowns")
        self._raw: dict[tuple[str, str], str] = {}  # what Redis holds for each mirrored entry
        self._set_if: Any = link.client.register_script(SET_IF)
        self._drop: Any = link.client.register_script(DROP)
        link.on_event("cooldown", self._on_set)
        link.on_event("cooldown-drop", self._on_drop)
        link.on_up(self.resync)

    # ------------------------------------------------------------------ reads: the mirror

    def cooling(self) -> bool:
        return bool(self.mirror.entries)

    def remaining(self, cred_id: str, model: str, now: float) -> float:
        return self.mirror.remaining(cred_id, model, now)

    def earliest(self, candidates: Collection[Candidate]) -> float:
        return self.mirror.earliest(candidates)

    def listable(self, route: Route) -> bool:
        return self.mirror.listable(route)

    def snapshot(self) -> list[CooldownView]:
        return self.mirror.snapshot()

    # ------------------------------------------------------------------ changes: Redis, then everyone

    async def failed(self, cred_id: str, model: str, failure: Failure, settings: CoolingSettings) -> float:
        link = self.link
        if settings.disabled or not link.up:
            return await self.mirror.failed(cred_id, model, failure, settings)
        key = (cred_id, model)
        field = cred_id + SEP + model
        for _ in range(4):
            now = self.clock()
            previous = self.mirror.entries.get(key)
            entry = cooldown_for(failure, previous, now, settings)
            if entry is None:
                return 0.0
            if entry is previous:  # one advance per open window: nothing to write
                return entry.until - now
            raw = self._encode(entry, now)
            event = jsonio.dumps({"kind": "cooldown", "node": link.node, "field": field, "value": raw})
            try:
                code, current = await self._set_if(
                    keys=[self.hash, link.channel], args=[field, self._raw.get(key, ""), raw, event]
                )
            except link.errors as exc:
                link.failed(exc)
                return await self.mirror.failed(cred_id, model, failure, settings)
            self._apply(field, raw if not code else current.decode())
            if not code:
                return entry.until - now
        return self.mirror.remaining(cred_id, model, self.clock())

    async def succeeded(self, cred_id: str, model: str) -> None:
        key = (cred_id, model)
        if key not in self.mirror.entries:
            return
        await self._drop_fields([cred_id + SEP + model])
        await self.mirror.succeeded(cred_id, model)

    async def clear(self, cred_ids: Collection[str] | None = None) -> list[str]:
        fields = [cred + SEP + model for cred, model in self.mirror.entries]
        link = self.link
        if link.up:
            try:
                fields = [f.decode() for f in await link.client.hkeys(self.hash)]
            except link.errors as exc:
                link.failed(exc)
        if cred_ids is not None:
            fields = [f for f in fields if f.partition(SEP)[0] in cred_ids]
        await self._drop_fields(fields)
        cleared = await self.mirror.clear(cred_ids)
        return sorted(set(cleared) | {f.partition(SEP)[2] for f in fields})

    async def _drop_fields(self, fields: list[str]) -> None:
        link = self.link
        for field in fields:
            self._raw.pop(_pair(field), None)
        if not fields or not link.up:
            return
        event = jsonio.dumps({"kind": "cooldown-drop", "node": link.node, "fields": fields})
        try:
            await self._drop(keys=[self.hash, link.channel], args=[event, *fields])
        except link.errors as exc:
            link.failed(exc)

    # ------------------------------------------------------------------ the mirror follows Redis

    async def resync(self) -> None:
        """Reload the mirror from Redis (called each time the link comes up)."""
        link = self.link
        held = {f.decode(): v.decode() for f, v in (await link.client.hgetall(self.hash)).items()}
        local_only = {
            cred + SEP + model: self._encode(entry, self.clock())
            for (cred, model), entry in self.mirror.entries.items()
            if (cred + SEP + model) not in held and entry.until > self.clock()
        }
        if local_only:  # cooldowns learned while Redis was away
            await link.client.hset(self.hash, mapping=local_only)
            held.update(local_only)
        self.mirror.entries.clear()
        self._raw.clear()
        for field, raw in held.items():
            self._apply(field, raw)

    def _on_set(self, event: dict[str, Any]) -> None:
        self._apply(event["field"], event["value"])

    def _on_drop(self, event: dict[str, Any]) -> None:
        for field in event["fields"]:
            key = _pair(field)
            self._raw.pop(key, None)
            self.mirror.entries.pop(key, None)

    def _apply(self, field: str, raw: str) -> None:
        key = _pair(field)
        if not raw:
            self._raw.pop(key, None)
            self.mirror.entries.pop(key, None)
            return
        until, reason, status, level = raw.split("|")
        self._raw[key] = raw
        left = float(until) - time.time()
        self.mirror.entries[key] = Cooldown(self.clock() + left, reason, int(status), int(level))

    def _encode(self, entry: Cooldown, now: float) -> str:
        return f"{time.time() + (entry.until - now)!r}|{entry.reason}|{entry.status}|{entry.level}"


def _pair(field: str) -> tuple[str, str]:
    cred, _, model = field.partition(SEP)
    return cred, model


def _check(health: RedisCredentialHealth) -> CredentialHealth:
    return health  # the type checker holds the implementation to the protocol
