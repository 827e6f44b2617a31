"""Refreshed OAuth credentials in Redis, for processes on hosts that do not share an auth-dir.

`credential:<id>` holds the tokens the last refresh got (`token_share.shared_tokens`, JSON, kept
`KEEP_SECONDS`), not the file. They are secrets: Redis must be as private as the auth-dir (a
password, TLS across hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cliproxy import jsonio
from cliproxy.credentials.token_share import TokenShare
from cliproxy.shared.connection import RedisLink

log = logging.getLogger(__name__)

KEEP_SECONDS = 30 * 86_400


class RedisTokenShare:
    def __init__(self, link: RedisLink) -> None:
        self.link = link

    async def latest(self, cred_id: str) -> dict[str, Any] | None:
        link = self.link
        if not link.up:
            return None
        try:
            raw = await link.client.get(link.key("credential", cred_id))
        except link.errors as exc:
            link.failed(exc)
            return None
        data = jsonio.loads(raw) if raw else None
        return data if isinstance(data, dict) else None

    async def publish(self, cred_id: str, data: Mapping[str, Any]) -> None:
        link = self.link
        if not link.up:
            log.warning("shared state: Redis is down; the refresh of %s reaches other hosts only by its file", cred_id)
            return
        try:
            await link.client.set(link.key("credential", cred_id), jsonio.dumps(dict(data)), ex=KEEP_SECONDS)
        except link.errors as exc:
            link.failed(exc)


def _check(share: RedisTokenShare) -> TokenShare:
    return share  # the type checker holds the implementation to the protocol
