"""Refreshed credentials handed between processes that do not share an auth-dir.

Processes on one host (or sharing a volume) pick a refreshed token up from the auth file. Processes
on several hosts each have their own copy of the file, so the one that refreshed also publishes the
new file contents through a `TokenShare` (the shared-state store), and one that waited for the
refresh lock takes them from there instead of spending the single-use refresh token again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class TokenShare(Protocol):
    async def latest(self, cred_id: str) -> dict[str, Any] | None:
        """The credential file contents the last refresh of `cred_id` produced, if any was shared."""
        ...

    async def publish(self, cred_id: str, data: Mapping[str, Any]) -> None:
        """Share the contents a refresh of `cred_id` wrote (best effort: a failure is only logged)."""
        ...
