"""Startup time to the first `/healthz` 200, and idle RSS, of `python -m cliproxy`.

Usage: `python bench/startup.py [--runs N]`. Each run writes a small config on a free port in a
temporary directory, starts the server as a subprocess, polls `/healthz` every 5 ms, then reads
the process's resident set size from `/proc` after one idle second. Prints the median and range.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
host: 127.0.0.1
port: {port}
auth-dir: ./auths
api-keys: [sk-bench-client-key-0001]
remote-management:
  secret-key: "$2b$04$zEKBjQoVCG3l5F2kZ6Z7a.Z2sTyh4DyIkJOg5s0UcvM4M8UPigcY6"  # bcrypt of "bench-secret"
claude-api-key:
  - api-key: sk-ant-bench-0001
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(port=port))
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cliproxy", "--config", str(config)],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        try:
            while not healthy(port):
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}")
                if time.perf_counter() - start > 30:
                    raise SystemExit("server did not become healthy within 30 s")
                time.sleep(0.005)
            elapsed = time.perf_counter() - start
            time.sleep(1.0)
            rss = rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)
    return elapsed, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: list[float] = []
    rss: list[float] = []
    for _ in range(args.runs):
        elapsed, mib = one_run()
        times.append(elapsed)
        rss.append(mib)
    print(
        f"startup to first /healthz 200: median {statistics.median(times) * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {args.runs} runs)"
    )
    print(f"idle RSS: median {statistics.median(rss):.1f} MiB (min {min(rss):.1f}, max {max(rss):.1f})")


if __name__ == "__main__":
    main()
