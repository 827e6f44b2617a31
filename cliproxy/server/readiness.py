"""Readiness: the checks behind `/readyz`, a list on `Services` that other services extend.

`/healthz` says the process answers; `/readyz` says it can serve: each check returns None when its
part is ready, else a short reason (never a secret or a file path: the endpoint is open). A check
that raises or takes longer than `CHECK_TIMEOUT_SECONDS` counts as not ready. A shared-state
backend adds its own check (a ping) to the list when it is built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

CHECK_TIMEOUT_SECONDS = 2.0
READY = "ok"


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    name: str  # shown as the key of its result, e.g. "usage-store"
    check: Callable[[], Awaitable[str | None]]  # None when ready, else why not


async def run_checks(checks: Sequence[ReadinessCheck]) -> tuple[bool, dict[str, str]]:
    """Run every check at once; (all ready, {name: "ok" or the reason})."""

    async def one(check: ReadinessCheck) -> str:
        try:
            reason = await asyncio.wait_for(check.check(), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as exc:  # a broken check says not ready, it does not break the probe
            return f"check failed ({type(exc).__name__})"
        return reason or READY

    results = await asyncio.gather(*(one(check) for check in checks))
    report = {check.name: result for check, result in zip(checks, results, strict=True)}
    return all(result == READY for result in results), report
