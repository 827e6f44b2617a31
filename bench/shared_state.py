"""What shared state costs per request: a key with limits counted in-process vs in Redis.

One fake upstream (`harness/upstream.py`) and one `redis-server` (started here, `--save ''
--appendonly no`) on the load CPU; the proxies on the SUT CPU, one at a time, fresh processes per
repetition, targets interleaved:
  local-plain     no shared-state; a plain key (no limits): the baseline
  local-limited   no shared-state; the client key has rpm, concurrency and daily-token limits
  redis-limited   the same key with `shared-state.redis-url`: one EVALSHA per request on the way in,
                  the release and usage adds pipelined after the answer
  redis-plain     the same Redis-backed proxy, a plain key (no limits): must cost what it costs today
Each run is wrk, non-stream POST, 64 connections, `--duration` seconds. CPU per request is the
proxy's own (`/proc/<pid>/task/*/schedstat`) divided by the requests wrk completed; Redis's own CPU
per request is shown beside it. On a 2-core machine the load generator, the upstream and Redis
share the second core: read the ratios, measured in the same run, rather than the absolutes.

Usage: `python bench/shared_state.py [--reps 3] [--duration 5]`; needs `wrk`, `taskset`, `redis-server`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passthrough import (
    CLIENT_KEY,
    HARNESS,
    Target,
    cpu_seconds,
    free_port,
    spawn,
    stop,
    wait_ready,
    write_wrk_inputs,
)

PLAIN_KEY = "sk-bench-plain"
LIMITS = "    max-requests-per-minute: 1000000000\n    max-concurrent: 100000\n    max-tokens-per-day: 1000000000000\n"
CONFIG = """\
host: 127.0.0.1
port: {port}
auth-dir: {auth_dir}
usage-db: off
api-keys:
  - {plain}
  - key: {key}
    name: bench-limited
{limits}debug: false
request-log: false
log-requests: false
request-retry: 0
openai-compatibility:
  - name: fake
    base-url: http://127.0.0.1:{upstream}/v1
    api-key-entries:
      - api-key: sk-up-1
    models:
      - name: gpt-4o-mini
        alias: gpt-4o-mini
"""


def run_wrk(port: int, key: str, body: Path, duration: int, cpu: str, script: Path, conns: int = 64) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    cmd = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "30s"]
    cmd += ["-s", str(script), "-H", f"Authorization: Bearer {key}", url]
    env = {**os.environ, "BENCH_BODY": str(body)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, env=env).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        return {"error": out[-300:]}
    r = json.loads(line[8:])
    return {"done": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6), "errors": r["errors"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--sut-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    args = parser.parse_args()
    for tool in ("wrk", "taskset", "redis-server"):
        if not shutil.which(tool):
            print(f"shared-state bench: {tool} is not installed; nothing measured.")
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="cliproxy-bench-shared-"))
    bodies, script = write_wrk_inputs(tmp)
    up_port, redis_port = free_port(), free_port()
    py = sys.executable
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    targets: list[tuple[Target, str]] = []
    for name, shared, key in (
        ("local-plain", False, PLAIN_KEY),
        ("local-limited", False, CLIENT_KEY),
        ("redis-limited", True, CLIENT_KEY),
        ("redis-plain", True, PLAIN_KEY),
    ):
        port = free_port()
        (tmp / f"{name}-auths").mkdir()
        config = tmp / f"{name}.yaml"
        text = CONFIG.format(
            port=port, auth_dir=tmp / f"{name}-auths", plain=PLAIN_KEY, key=CLIENT_KEY, limits=LIMITS, upstream=up_port
        )
        if shared:
            text += f'shared-state:\n  redis-url: "{redis_url}"\n'
        config.write_text(text)
        targets.append((Target(name, port, [py, "-m", "cliproxy", "--config", str(config)]), key))
    up_proc = redis_proc = None
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        up_proc = spawn([py, str(HARNESS / "upstream.py"), "--port", str(up_port)], args.load_cpu, tmp / "up.log")
        redis_cmd = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        redis_proc = spawn([*redis_cmd, "no", "--dir", str(tmp)], args.load_cpu, tmp / "redis.log")
        print(f"proxies on CPU {args.sut_cpu}; upstream, redis-server and wrk on CPU {args.load_cpu}", flush=True)
        for rep in range(args.reps):
            print(f"rep {rep + 1}", flush=True)
            order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
            for target, key in order:
                assert target.cmd is not None
                target.proc = spawn(target.cmd, args.sut_cpu, tmp / f"{target.name}-{rep}.log")
                try:
                    wait_ready(target, bodies)
                    run_wrk(target.port, key, bodies["ns"], 1, args.load_cpu, script, conns=16)  # warm-up
                    before, redis_before = cpu_seconds(target.proc.pid), cpu_seconds(redis_proc.pid)
                    r = run_wrk(target.port, key, bodies["ns"], args.duration, args.load_cpu, script)
                    if r.get("done"):
                        r["cpu_ms"] = (cpu_seconds(target.proc.pid) - before) * 1000 / r["done"]
                        r["redis_cpu_ms"] = (cpu_seconds(redis_proc.pid) - redis_before) * 1000 / r["done"]
                finally:
                    stop(target.proc)
                    target.proc = None
                results.setdefault(target.name, []).append(r)
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "done"}
                print(f"  {target.name:14s} {shown}", flush=True)
                time.sleep(0.2)
        report(results)
    finally:
        for target, _ in targets:
            stop(target.proc)
        stop(up_proc)
        stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def med(results: dict[str, list[dict[str, Any]]], name: str, key: str) -> float:
    values = [r[key] for r in results.get(name, []) if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    print(f"\nmedians of {len(results.get('local-limited', []))} runs (ns, c64)")
    print(f"  {'target':14s} {'rps':>9s} {'proxy CPU ms/req':>17s} {'redis CPU ms/req':>17s} {'errors':>7s}")
    for name in ("local-plain", "local-limited", "redis-limited", "redis-plain"):
        rps, cpu, rcpu = med(results, name, "rps"), med(results, name, "cpu_ms"), med(results, name, "redis_cpu_ms")
        errors = sum(r.get("errors", 0) for r in results.get(name, []))
        print(f"  {name:14s} {rps:9,.0f} {cpu:17.4f} {rcpu:17.4f} {errors:7d}")
    local, shared = med(results, "local-limited", "cpu_ms"), med(results, "redis-limited", "cpu_ms")
    plain, local_plain = med(results, "redis-plain", "cpu_ms"), med(results, "local-plain", "cpu_ms")
    print(f"\nlimited key, Redis vs in-process: proxy CPU per request × {shared / local:.2f}")
    print(f"plain key, shared state on vs off: proxy CPU per request × {plain / local_plain:.2f}")
    print("(2 cores: wrk, the upstream and redis-server share the load core; compare ratios, not absolutes)")


if __name__ == "__main__":
    raise SystemExit(main())
