"""The management guard's failure counts and bans, behind a protocol so a cluster can share them.

As CLIProxyAPI does, a client address that presents a wrong management key `MAX_FAILURES` times
(failures older than `FAILURE_WINDOW_SECONDS` apart are forgotten) is banned for `BAN_SECONDS`.
One process keeps this in memory (`guard.LocalGuardBans`); with `shared-state.redis-url` every
process reads and counts the same entries in Redis, so N processes do not give N times the tries.
"""

from __future__ import annotations

from typing import Protocol

MAX_FAILURES = 5
BAN_SECONDS = 30 * 60
FAILURE_WINDOW_SECONDS = 2 * 60 * 60  # failures older than this are forgotten (upstream's janitor idle time)


class GuardBans(Protocol):
    async def ban_left(self, ip: str) -> float:
        """Seconds `ip` stays banned (0: not banned)."""
        ...

    async def fail(self, ip: str) -> None:
        """Count a wrong key from `ip`; the `MAX_FAILURES`th bans it."""
        ...

    async def succeed(self, ip: str) -> None:
        """A right key from `ip`: its failures are forgotten."""
        ...
