"""Requests per second of `workers: 2` against `workers: 1` on the passthrough path.

The same fake OpenAI-compatible upstream and the same config as `passthrough.py` (non-stream
POSTs, 64 connections, wrk), served by `python -m cliproxy` with `workers: 1` and then with
`workers: 2` (a supervisor and two worker processes on one port, `SO_REUSEPORT`), in alternating
order for `--reps` repetitions, fresh processes each time; medians are reported. The config also
names a `shared-state.redis-url` on a `redis-server` this script starts on a free port (without
persistence), since more than one worker needs shared state; a cliproxy that does not know the
key yet only warns about it. Without `redis-server` installed, the run goes on without it.

Nothing is pinned: the workers are meant to use every core, and on a machine with few cores the
load generator (wrk) and the upstream share those cores with them, so the ratio shown is a floor
for what a second worker gives where the load comes from elsewhere.

Usage: `python bench/workers.py [--reps 3] [--duration 5]`. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import passthrough as pt  # the sibling benchmark: upstream, config, wrk and process helpers

CONNECTIONS = 64
ALL_CPUS = f"0-{(os.cpu_count() or 1) - 1}"


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its children (the supervisor and its workers)."""
    total = pt.cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(tree_cpu_seconds(int(child)) for child in children)


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes] | None, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, 0
    port = pt.free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with open(directory / "redis.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    pt.stop(proc)
    return None, 0


def config_text(port: int, auth_dir: Path, upstream: int, workers: int, redis_port: int) -> str:
    text = pt.CONFIG.format(port=port, auth_dir=auth_dir, key=pt.CLIENT_KEY, upstream=upstream)
    text += f"workers: {workers}\n"
    if redis_port:
        text += f'shared-state:\n  redis-url: "redis://127.0.0.1:{redis_port}/0"\n'
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("workers bench: wrk is not installed (Debian/Ubuntu: apt-get install wrk); nothing measured.")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="cliproxy-bench-workers-"))
    body = tmp / "ns.json"
    body.write_text(json.dumps(pt.BODIES["ns"], separators=(",", ":")))
    script = tmp / "post.lua"
    script.write_text(pt.WRK_SCRIPT)
    up_port = pt.free_port()
    (tmp / "auths").mkdir()
    redis, up = None, None
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        redis, redis_port = start_redis(tmp)
        up = pt.spawn(
            [sys.executable, str(pt.HARNESS / "upstream.py"), "--port", str(up_port)], ALL_CPUS, tmp / "up.log"
        )
        print(
            f"wrk non-stream POSTs, {CONNECTIONS} connections, {args.duration} s runs, {args.reps} reps; "
            f"{os.cpu_count()} cores shared by cliproxy's workers, wrk and the fake upstream (the load "
            "generator shares the cores: read the ratio as a floor); "
            + (f"redis-server on port {redis_port}" if redis else "no redis-server: shared-state left out"),
            flush=True,
        )
        for rep in range(args.reps):
            for workers in (1, 2) if rep % 2 == 0 else (2, 1):
                port = pt.free_port()
                config = tmp / f"config-{workers}.yaml"
                config.write_text(config_text(port, tmp / "auths", up_port, workers, redis_port))
                target = pt.Target(
                    f"workers-{workers}", port, [sys.executable, "-m", "cliproxy", "--config", str(config)]
                )
                assert target.cmd is not None
                target.proc = pt.spawn(target.cmd, ALL_CPUS, tmp / f"cliproxy-{workers}-{rep}.log")
                try:
                    bodies = {"ns": body, "st": tmp / "st.json"}
                    bodies["st"].write_text(json.dumps(pt.BODIES["st"], separators=(",", ":")))
                    pt.wait_ready(target, bodies)
                    time.sleep(1.0 if workers > 1 else 0.0)  # let the second worker finish starting too
                    pt.run_wrk(target, body, 16, 1, ALL_CPUS, script)  # warm-up, discarded
                    before = tree_cpu_seconds(target.proc.pid)
                    r = pt.run_wrk(target, body, CONNECTIONS, args.duration, ALL_CPUS, script)
                    if r.get("done"):
                        r["cpu_ms"] = (tree_cpu_seconds(target.proc.pid) - before) * 1000 / r["done"]
                finally:
                    pt.stop(target.proc)
                results[workers].append(r)
                shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != "done"}
                print(f"  rep {rep + 1} workers: {workers}  {shown}", flush=True)
        rps = {n: statistics.median(r["rps"] for r in runs if "rps" in r) for n, runs in results.items()}
        cpu = {n: statistics.median(r["cpu_ms"] for r in runs if "cpu_ms" in r) for n, runs in results.items()}
        print("\n  workers       rps  CPU ms/req (all processes)")
        for n in (1, 2):
            print(f"  {n:7d} {rps[n]:>9,.0f} {cpu[n]:>11.3f}")
        print(
            f"\n  workers: 2 ÷ workers: 1 = {rps[2] / rps[1]:.2f}× rps "
            f"(on {os.cpu_count()} cores that wrk and the upstream share with the workers)"
        )
    finally:
        pt.stop(up)
        pt.stop(redis)
        if args.keep:
            print(f"configs and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
