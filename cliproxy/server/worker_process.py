"""The worker side of `workers: N`: who this worker is, and stopping when the supervisor is gone.

A worker must never outlive its supervisor (a supervisor killed with SIGKILL cannot stop its
workers, and a leftover worker would keep the port and serve an old config). On Linux the kernel
sends the worker SIGTERM when its parent dies (`PR_SET_PDEATHSIG`); everywhere, the worker also
checks once a second that its parent is still the supervisor it was started by. Either way it
stops as on any SIGTERM: in-flight requests drain, then it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerRole:
    """Worker `index` (1..N) of the supervisor whose process id is `supervisor`."""

    index: int
    supervisor: int


def die_with_supervisor(role: WorkerRole) -> bool:
    """Ask the kernel for SIGTERM when the parent dies; False when it is already gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError) as exc:  # the parent check below still works
            log.warning("cannot ask to stop with the supervisor (%s); checking its pid instead", exc)
    return os.getppid() == role.supervisor  # checked after prctl: a death before it is seen here


def follow_supervisor(
    role: WorkerRole, *, interval: float = PARENT_CHECK_SECONDS, stop: Callable[[], None] | None = None
) -> Callable[[object], AsyncIterator[None]]:
    """An aiohttp `cleanup_ctx` that stops this process (SIGTERM to itself) once the parent changes."""

    def stop_self() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    on_gone = stop or stop_self

    async def watch() -> None:
        while os.getppid() == role.supervisor:
            await asyncio.sleep(interval)
        log.warning("the supervisor (pid %d) is gone: stopping", role.supervisor)
        on_gone()

    async def context(_app: object) -> AsyncIterator[None]:
        task = asyncio.create_task(watch(), name="cliproxy-supervisor-watch")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context
