"""Start `python -m cliproxy` as a real process on a free port, and wait for it to be healthy."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`python <args>` with the repo importable (for test-only launchers) and unbuffered output."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, *, ssl_context: ssl.SSLContext | None = None) -> float:
    """Poll `url` until 200; returns the seconds it took. Fails if the process dies first."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"server exited {proc.returncode}: {out.decode()} {err.decode()}")
            try:
                async with session.get(url, ssl=ssl_context if ssl_context else True) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except aiohttp.ClientError:
                pass
            assert time.monotonic() - start < START_DEADLINE_SECONDS, "server never became healthy"
            await asyncio.sleep(0.02)


def stop(
    proc: subprocess.Popen[bytes], sig: int | None = signal.SIGTERM, timeout: float = 40.0
) -> tuple[int, str, str]:
    """Signal the process (unless `sig` is None) and collect its exit code and output."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out.decode(), err.decode()
