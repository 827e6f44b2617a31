"""`workers: N`: one supervisor process and N worker processes serving the same port.

With `workers` above 1 the process started by the operator serves nothing itself. It starts N
copies of cliproxy (`cliproxy --worker I --supervisor PID`, the same config file, host and port);
each binds its own listening socket with `SO_REUSEPORT`, so the kernel spreads new connections
over them and every worker uses a core of its own. Each worker is a whole cliproxy: it watches
the config file and `auth-dir` itself, so a management write made through one worker (which
replaces the file) reaches the others through their watchers. State the workers must agree on
(limits, cooldowns, refresh locks) lives in the shared-state store, which is why `workers` above 1
needs `shared-state.redis-url`.

The supervisor:
- holds a `SO_REUSEPORT` socket bound (never listening, so it is never handed a connection) to the
  address for as long as it runs: a port in use fails at start, `port: 0` becomes one port every
  worker shares, and no other program can take the port while a worker restarts;
- restarts a worker that exits, with a delay that doubles while a worker keeps dying young
  (`RESTART_DELAY_MIN` up to `RESTART_DELAY_MAX`), and logs each exit with its code or signal;
- on SIGTERM or SIGINT sends SIGTERM to every worker (each drains its in-flight requests, as one
  process does), waits `STOP_GRACE_SECONDS`, SIGKILLs what is left and exits.
Workers run in their own process group, so a terminal's Ctrl-C reaches them once, through the
supervisor. A supervisor that dies without stopping them (SIGKILL) is noticed by each worker
(`worker_process.follow_supervisor`), which then stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cliproxy
from cliproxy.server.serve import SHUTDOWN_GRACE_SECONDS

log = logging.getLogger(__name__)

WORKER_FLAG, SUPERVISOR_FLAG = "--worker", "--supervisor"
STOP_GRACE_SECONDS = SHUTDOWN_GRACE_SECONDS + 5.0  # a worker's own drain, then a little slack
RESTART_DELAY_MIN, RESTART_DELAY_MAX = 0.5, 30.0
STABLE_SECONDS = 30.0  # a worker that ran this long before dying restarts after the shortest delay


def exit_description(returncode: int) -> str:
    """`exit code 3` or `signal SIGKILL`, from a `returncode` as asyncio reports it."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def restart_delay(quick_deaths: int) -> float:
    """The wait before a restart: doubles with each death in a row that came soon after a start."""
    return min(RESTART_DELAY_MAX, RESTART_DELAY_MIN * 2.0 ** max(quick_deaths - 1, 0))


def reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind (without listening) `SO_REUSEPORT` sockets on every address the workers will listen on.

    Returns them and the port (the one the kernel chose when `port` is 0). Raises `OSError` when
    the address is in use by a program that did not set `SO_REUSEPORT`, exactly as a worker would.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, address in dict.fromkeys((i[0], i[1], i[2], i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # as asyncio binds `::`: IPv6 only, IPv4 has its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            port = int(sock.getsockname()[1])
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets, port


def worker_command(config: Path, host: str, port: int, index: int) -> list[str]:
    """The command line of worker `index`: this interpreter, this copy of cliproxy, the same config.

    `-P` keeps the working directory off `sys.path`, and `PYTHONPATH` (see `worker_environment`)
    points at the package the supervisor runs, so a worker never imports another checkout.
    """
    return [
        sys.executable,
        "-P",
        "-m",
        "cliproxy",
        "--config",
        str(config.absolute()),
        "--host",
        host,
        "--port",
        str(port),
        WORKER_FLAG,
        str(index),
        SUPERVISOR_FLAG,
        str(os.getpid()),
    ]


def worker_environment() -> dict[str, str]:
    root = str(Path(cliproxy.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


@dataclass(eq=False)
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    quick_deaths: int = 0  # deaths in a row, each soon after its start


class Supervisor:
    """Runs `count` workers until told to stop; `command(index)` is a worker's command line."""

    def __init__(
        self,
        count: int,
        command: Callable[[int], Sequence[str]],
        *,
        env: dict[str, str] | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.workers = [Worker(index) for index in range(1, count + 1)]
        self.command = command
        self.env = env
        self.stop_grace = stop_grace
        self._stopping = asyncio.Event()

    def stop(self, signum: int | None = None) -> None:
        if signum is not None and not self._stopping.is_set():
            log.info("received %s: stopping %d workers", signal.Signals(signum).name, len(self.workers))
        self._stopping.set()

    async def run(self) -> int:
        """Start the workers, keep them running, stop them all on `stop` (or SIGTERM/SIGINT)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        keepers = [asyncio.create_task(self._keep(worker), name=f"worker-{worker.index}") for worker in self.workers]
        try:
            await self._stopping.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_all()
        return 0

    async def _start(self, worker: Worker) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(*self.command(worker.index), env=self.env, process_group=0)
        worker.process, worker.started = process, time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, process.pid)
        return process

    async def _keep(self, worker: Worker) -> None:
        """Run `worker`, and run it again each time it exits, until the supervisor stops."""
        while True:
            try:
                process = await self._start(worker)
            except OSError as exc:
                log.error("worker %d could not be started: %s", worker.index, exc)
                worker.quick_deaths += 1
            else:
                returncode = await process.wait()
                lived = time.monotonic() - worker.started
                worker.quick_deaths = 0 if lived >= STABLE_SECONDS else worker.quick_deaths + 1
                log.error(
                    "worker %d (pid %d) exited with %s after %.1f s",
                    worker.index,
                    process.pid,
                    exit_description(returncode),
                    lived,
                )
            delay = restart_delay(worker.quick_deaths)
            log.info("restarting worker %d in %.1f s", worker.index, delay)
            await asyncio.sleep(delay)

    async def _stop_all(self) -> None:
        """SIGTERM every live worker, wait for their drain (bounded), SIGKILL what is left."""
        running = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if not running:
            return
        waits = [asyncio.create_task(p.wait()) for p in running]
        _, late = await asyncio.wait(waits, timeout=self.stop_grace)
        for process in running:
            if process.returncode is None:
                log.warning("worker (pid %d) did not stop within %.0f s: killing it", process.pid, self.stop_grace)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
        log.info("all workers stopped")


def supervise(config: Path, host: str, port: int, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM/SIGINT. Raises `OSError` when the address
    cannot be bound."""
    sockets, port = reserve_port(host, port)
    try:
        log.info("cliproxy %s supervising %d workers on %s:%d", cliproxy.__version__, count, host or "*", port)
        supervisor = Supervisor(
            count, lambda index: worker_command(config, host, port, index), env=worker_environment()
        )
        return asyncio.run(supervisor.run())
    finally:
        for sock in sockets:
            sock.close()
