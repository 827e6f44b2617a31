"""Refreshed credentials handed between processes that do not share an auth-dir.

Processes on one host (or sharing a volume) pick a refreshed token up from the auth file. Processes
on several hosts each have their own copy of the file, so the one that refreshed also publishes the
new tokens through a `TokenShare` (the shared-state store), and one that waited for the refresh lock
takes them from there instead of spending the single-use refresh token again.

Only the token endpoint's answer travels (`shared_tokens`), not the file: each host merges it into
its own copy as its own refresh would, so what a host set locally (`disabled`, `priority`, `prefix`,
`proxy-url`, a note) stays as it is there, and the store holds no more than the tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cliproxy.credentials.oauth import OAuthError, TokenSet


class TokenShare(Protocol):
    async def latest(self, cred_id: str) -> dict[str, Any] | None:
        """What the last refresh of `cred_id` shared (`shared_tokens`), if any."""
        ...

    async def publish(self, cred_id: str, data: Mapping[str, Any]) -> None:
        """Share a refresh of `cred_id` (best effort: a failure is only logged)."""
        ...


def shared_tokens(cred_type: str, tokens: TokenSet) -> dict[str, Any]:
    """A refresh's tokens as plain data: the answer they were read from (`TokenSet.from_json` makes
    them again) and when it arrived (expiry counts from then)."""
    return {"type": cred_type, "tokens": dict(tokens.raw), "received_at": tokens.received_at.timestamp()}


def tokens_of(shared: Mapping[str, Any] | None, cred_type: str) -> TokenSet | None:
    """The tokens `shared_tokens` made for a credential of `cred_type`; None for anything else."""
    if not shared or shared.get("type") != cred_type:
        return None
    raw, received = shared.get("tokens"), shared.get("received_at")
    if not isinstance(raw, dict) or not isinstance(received, int | float):
        return None
    try:
        tokens = TokenSet.from_json(raw)
    except OAuthError:
        return None
    return dataclasses.replace(tokens, received_at=datetime.fromtimestamp(received, UTC))
