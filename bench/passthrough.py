"""Passthrough cost of cliproxy against a minimal aiohttp relay, measured side by side in one run.

Three targets share one fake OpenAI-compatible upstream (`harness/upstream.py`):
  direct    wrk → upstream (the harness ceiling, and the TTFB baseline)
  relay     `harness/relay.py`: the floor any aiohttp proxy could reach (key check, JSON parse,
            round-robin key, shared session, bytes relayed as they arrive)
  cliproxy  `python -m cliproxy` with a generated config: 3 client keys, an `openai-compatibility`
            provider with 3 keys on the fake upstream, round-robin, logging quiet (no per-request
            lines: `--extra-config 'log-requests: true'` measures them)
The proxies run on CPU 0 (`--sut-cpu`), the upstream and the load generators on CPU 1
(`--load-cpu`), so every proxy figure is a one-core figure. Scenarios, each repeated `--reps` times
with the targets interleaved, their order rotated and fresh proxy processes started per repetition
(medians reported; one process's CPU per request depends on its memory layout and hash seed):
  ns-c64    wrk, non-stream POST, 64 connections: rps, p50/p99, proxy CPU ms per request
  st-c64    wrk, unpaced 20-chunk streams, 64 connections: streams/s, CPU ms per stream
  ttfb-c64  `harness/streams.py`, 64 concurrent streams paced 10 ms per chunk: TTFB added vs direct
CPU per request comes from `/proc/<pid>/task/*/schedstat` of the proxy, so it is the proxy's own
time and hardly depends on neighbours. Absolute numbers vary with the machine's load; read the
ratios against the relay measured in the same run.

Usage: `python bench/passthrough.py [--reps 3] [--duration 5] [--scenarios ns-c64,st-c64,ttfb-c64]`
Needs `wrk` (Debian: `apt-get install wrk`) and `taskset`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness"
CLIENT_KEY = "sk-bench-client"
AUTH = f"Authorization: Bearer {CLIENT_KEY}"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello and explain in one sentence what a reverse proxy does."},
]
BODIES = {
    "ns": {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 64},
    "st": {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 64, "stream": True},
    "slow": {"model": "gpt-4o-mini-slow", "messages": MESSAGES, "max_tokens": 64, "stream": True},
}
SCENARIOS = {"ns-c64": ("wrk", "ns", 64), "st-c64": ("wrk", "st", 64), "ttfb-c64": ("streams", "slow", 64)}
# Issue 3's "Done when": rps ≥ 0.8 × relay, CPU ≤ 0.17 ms per request, TTFB added ≤ 1 ms at c64.
TARGET_RPS_RATIO, TARGET_CPU_MS, TARGET_TTFB_MS = 0.8, 0.17, 1.0

CONFIG = """\
host: 127.0.0.1
port: {port}
auth-dir: {auth_dir}
api-keys: [{key}, sk-bench-client-2, sk-bench-client-3]
debug: false
request-log: false
log-requests: false
routing:
  strategy: round-robin
request-retry: 0
openai-compatibility:
  - name: fake
    base-url: http://127.0.0.1:{upstream}/v1
    api-key-entries:
      - api-key: sk-up-1
      - api-key: sk-up-2
      - api-key: sk-up-3
    models:
      - name: gpt-4o-mini
        alias: gpt-4o-mini
      - name: gpt-4o-mini-slow
        alias: gpt-4o-mini-slow
"""

WRK_SCRIPT = """\
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
function done(s, lat, req)
  local e = s.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.status + e.timeout,
    lat:percentile(50), lat:percentile(99)))
end
"""


@dataclass
class Target:
    name: str
    port: int
    cmd: list[str] | None  # None: the upstream itself
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_wrk_inputs(tmp: Path) -> tuple[dict[str, Path], Path]:
    """The request bodies (one file per scenario body) and wrk's Lua script, written into `tmp`."""
    bodies = {name: tmp / f"{name}.json" for name in BODIES}
    for name, body in BODIES.items():
        bodies[name].write_text(json.dumps(body, separators=(",", ":")))
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT)
    return bodies, script


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` (schedstat: nanoseconds, not clock ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e9


def post(url: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return resp.status, resp.read()


def spawn(cmd: list[str], cpu: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `cmd` pinned to `cpu`. The working directory is the log's (the run's temporary
    directory): `python -m cliproxy` puts its working directory first on `sys.path`, so starting in
    a checkout would import that checkout's code and silently defeat `--baseline`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["taskset", "-c", cpu, *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=log.parent,
        )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the group start_new_session made for it
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_ready(target: Target, bodies: dict[str, Path], timeout: float = 60.0) -> None:
    """Until a proxied completion answers 200; then check a stream arrives whole."""
    deadline = time.monotonic() + timeout
    while True:
        if target.proc is not None and target.proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {target.proc.returncode}")
        try:
            if post(target.url, bodies["ns"].read_bytes())[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name} gave no 200 within {timeout:.0f}s")
        time.sleep(0.05)
    status, data = post(target.url, bodies["st"].read_bytes())
    if status != 200 or data.count(b"data:") < 21 or b"[DONE]" not in data:
        raise RuntimeError(f"{target.name}: bad stream answer ({status}, {data[:200]!r})")


def run_wrk(target: Target, body: Path, conns: int, duration: int, cpu: str, script: Path) -> dict[str, Any]:
    cmd = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "30s"]
    cmd += ["-s", str(script), "-H", AUTH, target.url]
    env = {**os.environ, "BENCH_BODY": str(body)}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, env=env).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        return {"error": out[-300:]}
    r = json.loads(line[8:])
    return {
        "done": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": r["errors"],
    }


def run_streams(target: Target, body: Path, conc: int, duration: float, cpu: str) -> dict[str, Any]:
    cmd = ["taskset", "-c", cpu, sys.executable, str(HARNESS / "streams.py"), target.url, "--body", str(body)]
    cmd += ["-c", str(conc), "-d", str(duration), "-H", AUTH]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("STREAMJSON ")), None)
    if line is None:
        return {"error": (out.stdout + out.stderr)[-300:]}
    r: dict[str, Any] = json.loads(line[11:])
    r["done"] = r["completed"]
    return r


def measure(target: Target, scenario: str, args: argparse.Namespace, bodies: dict[str, Path], script: Path) -> None:
    tool, body, conc = SCENARIOS[scenario]
    pid = target.proc.pid if target.proc else None
    before = cpu_seconds(pid) if pid else 0.0
    if tool == "wrk":
        r = run_wrk(target, bodies[body], conc, args.duration, args.load_cpu, script)
    else:
        r = run_streams(target, bodies[body], conc, args.duration, args.load_cpu)
    if pid and r.get("done"):
        r["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / r["done"]
    target.runs.setdefault(scenario, []).append(r)
    shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != "done"}
    print(f"  {scenario:8s} {target.name:9s} {shown}", flush=True)


def median(target: Target, scenario: str, key: str) -> float | None:
    values = [r[key] for r in target.runs.get(scenario, []) if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def report(targets: list[Target], scenarios: list[str]) -> list[str]:
    """The tables, then the issue's three targets with PASS/MISS; returns the missed ones."""
    by = {t.name: t for t in targets}
    direct, relay, ours = by["direct"], by["relay"], by["cliproxy"]
    for scenario in scenarios:
        tool = SCENARIOS[scenario][0]
        print(f"\n{scenario} (medians of {len(ours.runs.get(scenario, []))} runs)")
        if tool == "wrk":
            print("  target          rps  ÷relay  ÷direct  p50 ms  p99 ms CPU ms/req")
            base, top = median(relay, scenario, "rps"), median(direct, scenario, "rps")
            for t in targets:
                rps = median(t, scenario, "rps")
                r_relay = rps / base if rps and base else None
                r_direct = rps / top if rps and top else None
                print(
                    f"  {t.name:9s} {fmt(rps, 0):>9s} {fmt(r_relay):>7s} {fmt(r_direct, 3):>8s} "
                    f"{fmt(median(t, scenario, 'p50_ms')):>7s} {fmt(median(t, scenario, 'p99_ms')):>7s} "
                    f"{fmt(median(t, scenario, 'cpu_ms'), 3):>10s}"
                )
        else:
            print("  target    streams/s TTFB p50  added TTFB p99 total p50 CPU ms/stream")
            base = median(direct, scenario, "ttfb_p50_ms")
            for t in targets:
                ttfb = median(t, scenario, "ttfb_p50_ms")
                added = ttfb - base if ttfb is not None and base is not None and t is not direct else None
                print(
                    f"  {t.name:9s} {fmt(median(t, scenario, 'streams_per_s'), 1):>9s} {fmt(ttfb):>8s} "
                    f"{fmt(added):>6s} {fmt(median(t, scenario, 'ttfb_p99_ms')):>8s} "
                    f"{fmt(median(t, scenario, 'total_p50_ms')):>9s} {fmt(median(t, scenario, 'cpu_ms'), 3):>13s}"
                )
    errors = sum(r.get("errors", 0) or 0 for t in targets for runs in t.runs.values() for r in runs)
    failed = [r["error"] for t in targets for runs in t.runs.values() for r in runs if "error" in r]
    print(
        f"\nerrors: {errors} failed requests, {len(failed)} failed runs"
        + (f" (first: {failed[0]!r})" if failed else "")
    )
    checks: list[tuple[str, float | None, str, bool | None]] = []
    if "ns-c64" in scenarios:
        ours_rps, relay_rps = median(ours, "ns-c64", "rps"), median(relay, "ns-c64", "rps")
        ratio = ours_rps / relay_rps if ours_rps and relay_rps else None
        checks.append(
            ("non-stream rps c64 ÷ relay", ratio, f">= {TARGET_RPS_RATIO}", ratio and ratio >= TARGET_RPS_RATIO)
        )
        cpu = median(ours, "ns-c64", "cpu_ms")
        checks.append(
            ("CPU ms per request, ns c64", cpu, f"<= {TARGET_CPU_MS}", cpu is not None and cpu <= TARGET_CPU_MS)
        )
    if "ttfb-c64" in scenarios:
        t_ours, t_direct = median(ours, "ttfb-c64", "ttfb_p50_ms"), median(direct, "ttfb-c64", "ttfb_p50_ms")
        added = t_ours - t_direct if t_ours is not None and t_direct is not None else None
        checks.append(
            (
                "TTFB added p50 ms, paced c64",
                added,
                f"<= {TARGET_TTFB_MS}",
                added is not None and added <= TARGET_TTFB_MS,
            )
        )
    print("\nissue 3 targets (cliproxy):")
    for name, value, bound, ok in checks:
        print(f"  {name:30s} {fmt(value, 3):>7s}  target {bound:8s} {'PASS' if ok else 'MISS'}")
    return [name for name, _, _, ok in checks if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--sut-cpu", default="0", help="CPU list for the proxies under test")
    parser.add_argument("--load-cpu", default="1", help="CPU list for the upstream and the load generators")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    parser.add_argument("--baseline", metavar="DIR", help="also run cliproxy from this source checkout (A/B)")
    parser.add_argument(
        "--same-processes",
        action="store_true",
        help="keep one process per proxy for all reps (by default each rep starts fresh ones: two runs "
        "of the same code can differ by 20%% in CPU per request, by memory layout and hash seed alone)",
    )
    parser.add_argument("--extra-config", default="", help="YAML appended to cliproxy's config, e.g. 'usage-db: off'")
    parser.add_argument(
        "--baseline-extra-config",
        default=None,
        help="YAML appended to the baseline's config instead of --extra-config: with --baseline set to "
        "this checkout, an A/B of one setting in one run (e.g. 'metrics: {enabled: false}')",
    )
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    if not shutil.which("wrk") and any(SCENARIOS[s][0] == "wrk" for s in scenarios):
        print("passthrough bench: wrk is not installed (Debian/Ubuntu: apt-get install wrk); nothing measured.")
        return 1
    if not shutil.which("taskset"):
        print("passthrough bench: taskset (util-linux) is missing; nothing measured.")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="cliproxy-bench-"))
    bodies, script = write_wrk_inputs(tmp)
    up_port, relay_port, our_port = free_port(), free_port(), free_port()
    (tmp / "auths").mkdir()
    config = tmp / "config.yaml"
    config.write_text(
        CONFIG.format(port=our_port, auth_dir=tmp / "auths", key=CLIENT_KEY, upstream=up_port)
        + args.extra_config
        + "\n"
    )
    py = sys.executable
    upstream = str(HARNESS / "upstream.py")
    relay_cmd = [py, str(HARNESS / "relay.py"), "--port", str(relay_port), "--upstream", f"http://127.0.0.1:{up_port}"]
    targets = [
        Target("direct", up_port, None),
        Target("relay", relay_port, relay_cmd),
        Target("cliproxy", our_port, [py, "-m", "cliproxy", "--config", str(config)]),
    ]
    if args.baseline:  # the same config served by another checkout, on its own port
        base_port = free_port()
        base_config = tmp / "baseline.yaml"
        (tmp / "baseline-auths").mkdir()
        text = config.read_text().replace(f"port: {our_port}\n", f"port: {base_port}\n", 1)
        if args.baseline_extra_config is not None:
            text = text.removesuffix(args.extra_config + "\n") + args.baseline_extra_config + "\n"
        base_config.write_text(text.replace(str(tmp / "auths"), str(tmp / "baseline-auths"), 1))
        cmd = [py, "-m", "cliproxy", "--config", str(base_config)]
        targets.append(Target("baseline", base_port, cmd, {"PYTHONPATH": str(Path(args.baseline).resolve())}))
    up_proc = None
    try:
        up_proc = spawn([py, upstream, "--port", str(up_port)], args.load_cpu, tmp / "upstream.log")

        def start_proxies(rep: int) -> None:
            """Fresh proxy processes, ready and warmed up (the warm-up is discarded: lazy imports, pools)."""
            for target in targets[1:]:
                assert target.cmd is not None
                stop(target.proc)
                target.proc = spawn(target.cmd, args.sut_cpu, tmp / f"{target.name}-{rep}.log", target.env)
            for target in targets:
                wait_ready(target, bodies)
            for target in targets:
                run_wrk(target, bodies["ns"], 16, 1, args.load_cpu, script)
                run_wrk(target, bodies["st"], 16, 1, args.load_cpu, script)

        start_proxies(0)
        print(
            f"direct, relay and cliproxy up; proxies on CPU {args.sut_cpu}, load on CPU {args.load_cpu}; "
            f"{args.reps} reps × {args.duration:g} s"
            + ("" if args.same_processes else ", new proxy processes per rep"),
            flush=True,
        )
        for rep in range(args.reps):
            print(f"rep {rep + 1}", flush=True)
            if rep and not args.same_processes:
                start_proxies(rep)
            order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
            for scenario in scenarios:
                for target in order:
                    measure(target, scenario, args, bodies, script)
                    time.sleep(0.2)
        missed = report(targets, scenarios)
        print("all targets met" if not missed else f"missed: {', '.join(missed)}")
    finally:
        for target in targets:
            stop(target.proc)
        stop(up_proc)
        if args.keep:
            print(f"configs and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
