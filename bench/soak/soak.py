"""`make soak`: mixed client traffic through a real `python -m cliproxy` whose upstreams misbehave.

Three processes: the proxy (a generated config, small `upstream-timeouts`), the fake upstreams
(`upstreams.py`: one per provider dialect, three credentials each, a seeded share of the requests
answered with stalls, cut streams, 429 storms with sane and bogus retry hints, garbage 200s,
malformed framing, gzip bombs and 503/529s), and this one, whose clients (`traffic.py`: the official
SDKs, raw HTTP and the Responses WebSocket, streams and whole answers, some hanging up on purpose)
keep `--concurrency` requests in flight for `--minutes`. Every `--sample-seconds` it reads the
proxy's RSS and open descriptors from /proc.

The run fails unless:
- every client request ended (none outlived its generous client-side timeout) and none failed:
  the proxy's errors were only 429, its own 502/504, an upstream's own 5xx passed on, or a stream's
  in-band error after a break; never a 500, never a fault's body relayed as an answer, never a
  stream cut without its end event or an error;
- RSS at the end of the traffic is less than 10 % above RSS after warm-up (the first 20 % of the
  run, and at least the first 10,000 requests, which fill the proxy's ring of recent usage
  records, unless that takes half the run). Both are taken quiet: the clients pause at the end of
  warm-up until their requests have ended, so neither sample catches a transient buffer (a gzip
  bomb inflating toward the proxy's cap can add 100 MiB for a moment);
- open descriptors, once the traffic has stopped and idle connections have expired (the fakes
  keep theirs open for `--upstream-keepalive`, 120 s, as real upstreams do: the proxy's pool must
  close each after 15 s idle itself), are back to the count before any traffic, plus `FD_SLACK`;
- the proxy held no stall longer than its timeouts allow, sent no request upstream more often than
  its credentials and retry rounds allow (no hidden re-sends), let no bogus retry hint cool a
  credential past `max-cooldown-seconds`, and logged no traceback.

Usage: `python bench/soak/soak.py [--minutes 10] [--concurrency 24] [--seed 7] [--fault-rate 0.24]`
(`make soak`, or `make soak ARGS="--minutes 1"`). Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import report
from traffic import Traffic, run_workers

HERE = Path(__file__).resolve().parent
CLIENT_KEY = "sk-soak-client-0123456789"
CREDENTIALS = 3  # per provider
REQUEST_RETRY = 1
FIRST_BYTE, IDLE, MAX_COOLDOWN = 2.0, 2.0, 5.0
# Warm-up: the first 20 % of the run, and at least the first 10,000 requests (at most half the
# run), since the proxy keeps the usage records of its last 10,000 requests in memory (a bounded
# ring for the management API, about 1 KiB a record) and that ring must be full before growth means
# anything.
WARM_UP_SHARE, WARM_UP_REQUESTS, WARM_UP_LATEST = 0.2, 10_000, 0.5
RSS_GROWTH_LIMIT = 0.10
# Descriptors the proxy may open for good once it has served traffic: none are known today (the
# pool's and the clients' sockets all close), two cover a lazily made resource we did not foresee
# (a resolver or an executor's wakeup pipe) without hiding a leak, which grows with the requests.
FD_SLACK = 2
# glibc raises its mmap threshold after a large buffer is freed (up to 32 MiB), and from then on
# keeps such buffers in its heap for reuse: tens of MiB of freed memory that RSS still counts, more
# or less by chance at any one sample. Pinned, a freed large buffer goes back to the system at once
# and RSS counts what is alive (leaked objects included; small ones live in Python's own arenas).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
QUIET_SECONDS = 1.0  # after the last request ends, before a quiet sample (its buffers are freed by then)
IDLE_EXPIRY_SECONDS = 15.0  # the proxy closes an upstream connection idle this long (its pool's limit)
TIMER_SLACK = 3.0  # a loaded 2-core machine may fire a timer this late
SMOKE_TIMER_SLACK = 30.0  # the test suite's smoke run shares the machine with anything
LOG_PROBLEMS = re.compile(r"Traceback|Error handling request|Task exception was never retrieved|Exception in callback")

CONFIG = """\
host: 127.0.0.1
port: {port}
auth-dir: {auth_dir}
api-keys: [{key}]
debug: false
request-log: false
usage-statistics-enabled: false
usage-db: "off"
routing:
  strategy: round-robin
request-retry: {retry}
max-retry-interval: 2
transient-error-cooldown-seconds: -1
max-cooldown-seconds: {max_cooldown}
upstream-timeouts:
  connect-seconds: 2
  first-byte-seconds: {first_byte}
  idle-seconds: {idle}
streaming:
  keepalive-seconds: 0.5
openai-compatibility:
  - name: soak
    base-url: http://127.0.0.1:{chat}/v1
    api-key-entries:
{chat_keys}
    models:
      - name: soak-chat-upstream
        alias: soak-chat
codex-api-key:
{codex}
claude-api-key:
{claude}
gemini-api-key:
{gemini}
"""


def provider_entries(kind: str, base: str, model: str, alias: str, own_timeouts: bool = False) -> str:
    lines = []
    for i in range(CREDENTIALS):
        lines += [
            f"  - api-key: sk-soak-{kind}-{i}-abcdef0123",
            f"    base-url: {base}",
            "    models:",
            f"      - name: {model}",
            f"        alias: {alias}",
        ]
        if own_timeouts and i == 0:  # one entry with its own bounds (the rest use the global ones)
            lines += ["    upstream-timeouts:", f"      first-byte-seconds: {FIRST_BYTE * 0.75:g}"]
    return "\n".join(lines)


def write_config(path: Path, port: int, fakes: dict[str, int]) -> None:
    local = "http://127.0.0.1"
    chat_keys = "\n".join(f"      - api-key: sk-soak-chat-{i}-abcdef0123" for i in range(CREDENTIALS))
    path.write_text(
        CONFIG.format(
            port=port,
            auth_dir=path.parent / "auths",
            key=CLIENT_KEY,
            retry=REQUEST_RETRY,
            max_cooldown=MAX_COOLDOWN,
            first_byte=FIRST_BYTE,
            idle=IDLE,
            chat=fakes["chat"],
            chat_keys=chat_keys,
            codex=provider_entries("codex", f"{local}:{fakes['responses']}/v1", "soak-responses-up", "soak-responses"),
            claude=provider_entries("claude", f"{local}:{fakes['claude']}", "soak-claude-up", "soak-claude", True),
            gemini=provider_entries("gemini", f"{local}:{fakes['gemini']}", "soak-gemini-up", "soak-gemini"),
        )
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sample:
    at: float  # seconds since the traffic started (negative: before)
    rss_kb: int
    fds: int
    in_flight: int
    done: int


@dataclass
class Probe:
    """Reads a process's resident memory and open descriptors from /proc."""

    pid: int
    samples: list[Sample] = field(default_factory=list)

    def read(self, at: float, in_flight: int = 0, done: int = 0) -> Sample:
        rss = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        sample = Sample(round(at, 1), rss, len(os.listdir(f"/proc/{self.pid}/fd")), in_flight, done)
        self.samples.append(sample)
        return sample


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def wait_healthy(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the proxy exited with {proc.returncode} before it was healthy")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy was not healthy within 60 s")
            await asyncio.sleep(0.1)


async def fakes_call(port: int, what: str) -> dict[str, object]:
    """The fakes' counters (`stats`), or tell them the clients paused (`resume`)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/__soak/{what}") as resp:
        answer: dict[str, object] = await resp.json()
        return answer


def start_fakes(args: argparse.Namespace, work: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """The fake upstreams' process, and the port of each dialect's server."""
    with open(work / "upstreams.log", "wb") as log:
        fakes = subprocess.Popen(
            [
                *(sys.executable, str(HERE / "upstreams.py"), "--seed", str(args.seed)),
                *("--fault-rate", str(args.fault_rate), "--kinds", args.kinds),
                *("--keepalive", str(args.upstream_keepalive)),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=work,
        )
    assert fakes.stdout is not None
    line = fakes.stdout.readline()
    if not line:
        stop(fakes)
        raise RuntimeError(f"the fake upstreams did not start; see {work / 'upstreams.log'}")
    return fakes, json.loads(line)


def start_proxy(work: Path, fakes: dict[str, int]) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m cliproxy` on a generated config, and its base URL. It runs in the run's directory,
    so the installed cliproxy (this checkout, in the venv) is what runs."""
    port = free_port()
    config = work / "config.yaml"
    write_config(config, port, fakes)
    with open(work / "proxy.log", "wb") as out:
        proxy = subprocess.Popen(
            [sys.executable, "-m", "cliproxy", "--config", str(config)],
            stdout=out,
            stderr=out,
            cwd=work,
            env={**os.environ, **MALLOC_ENV},
        )
    return proxy, f"http://127.0.0.1:{port}"


@dataclass
class Marks:
    """Indexes into the samples: the quiet ones the checks compare."""

    start: int = 0
    warm_up: int = -1
    traffic_end: int = -1


async def drive(
    args: argparse.Namespace, proxy: subprocess.Popen[bytes], traffic: Traffic, probe: Probe, fakes_port: int
) -> Marks:
    """The traffic, with a sample every `--sample-seconds`, a quiet one after warm-up and one after
    the traffic; then the wait for idle connections to expire, still sampling."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    seconds = args.minutes * 60
    next_sample = began + args.sample_seconds
    marks = Marks()

    def sample() -> None:
        probe.read(loop.time() - began, traffic.in_flight, len(traffic.results))

    async def tick() -> None:
        nonlocal next_sample
        if proxy.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proxy.returncode} during the soak")
        elapsed = loop.time() - began
        warmed = len(traffic.results) >= WARM_UP_REQUESTS or elapsed >= seconds * WARM_UP_LATEST
        if marks.warm_up < 0 and elapsed >= seconds * WARM_UP_SHARE and warmed:
            await traffic.quiesce(args.client_timeout)
            await asyncio.sleep(QUIET_SECONDS)
            sample()
            marks.warm_up = len(probe.samples) - 1
            await fakes_call(fakes_port, "resume")  # a credential idle during the pause is not one held back
            traffic.gate.set()
            next_sample = loop.time() + args.sample_seconds
        elif loop.time() >= next_sample:
            sample()
            next_sample += args.sample_seconds
            if args.progress:
                report.progress(probe.samples[-1], traffic.results)

    await run_workers(traffic, args.concurrency, seconds, tick)
    await asyncio.sleep(QUIET_SECONDS)
    sample()
    marks.traffic_end = len(probe.samples) - 1
    if marks.warm_up < 0:  # a run too short to reach its warm-up tick
        marks.warm_up = marks.traffic_end
    await traffic.close()
    settle_until = loop.time() + args.settle_seconds
    while loop.time() < settle_until:
        await asyncio.sleep(min(args.sample_seconds, max(0.0, settle_until - loop.time())))
        sample()
    return marks


async def soak(args: argparse.Namespace, work: Path) -> int:
    fakes, ports = start_fakes(args, work)
    proxy = None
    try:
        proxy, base = start_proxy(work, ports)
        await wait_healthy(proxy, base + "/healthz")
        probe = Probe(proxy.pid)
        await asyncio.sleep(2)  # let the background loads at start settle (the price table)
        probe.read(-1)
        traffic = Traffic(base, CLIENT_KEY, args.client_timeout, args.leave_share, args.seed)
        await traffic.open()
        marks = await drive(args, proxy, traffic, probe, ports["chat"])
        stats = await fakes_call(ports["chat"], "stats")
    finally:
        if proxy is not None:
            stop(proxy)
        stop(fakes)
    slack = SMOKE_TIMER_SLACK if args.smoke else TIMER_SLACK
    log_text = (work / "proxy.log").read_text(errors="replace")
    (work / "samples.json").write_text(json.dumps([s.__dict__ for s in probe.samples], indent=0))
    summary = report.Summary(
        minutes=args.minutes,
        concurrency=args.concurrency,
        seed=args.seed,
        results=traffic.results,
        stats=stats,
        samples=probe.samples,
        start=probe.samples[marks.start],
        warm_up=probe.samples[marks.warm_up],
        traffic_end=probe.samples[marks.traffic_end],
        end=probe.samples[-1],
        log_problems=[line for line in log_text.splitlines() if LOG_PROBLEMS.search(line)],
        limits=report.Limits(
            rss_growth=None if args.smoke else RSS_GROWTH_LIMIT,
            fd_slack=FD_SLACK,
            stall_seconds=max(FIRST_BYTE, IDLE) + slack,
            attempts=CREDENTIALS * (1 + REQUEST_RETRY),
            rounds=1 + REQUEST_RETRY,
            back_after_429=MAX_COOLDOWN + slack + 2.0,  # plus the wait for the next request to pick it
        ),
    )
    return summary.print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the traffic (default 10)")
    parser.add_argument("--concurrency", type=int, default=24, help="client requests in flight (default 24)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.24, help="share of upstream requests given a fault")
    parser.add_argument("--leave-share", type=float, default=0.08, help="share of clients that hang up mid-answer")
    parser.add_argument("--client-timeout", type=float, default=60.0, help="a request not ended by then is a hang")
    parser.add_argument("--sample-seconds", type=float, default=10.0, help="RSS and descriptor sampling period")
    parser.add_argument(
        "--settle-seconds", type=float, default=20.0, help="idle wait before the last sample (default 20)"
    )
    parser.add_argument(
        "--upstream-keepalive",
        type=float,
        default=120.0,
        help="seconds the fakes keep an idle connection open (default 120, as real upstreams do)",
    )
    parser.add_argument("--kinds", default="", help="only these fault kinds, comma-separated (default: all)")
    parser.add_argument("--progress", action="store_true", help="print a line per sample")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (config, logs)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds end to end, so the soak cannot rot (the test suite runs it): 0.1 min, 8 clients, "
        "upstreams that close idle connections after 1 s; timing limits loosened and RSS not judged, "
        "since the machine may be busy and so short a warm-up means nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.minutes, args.concurrency, args.sample_seconds = 0.1, 8, 1.0
        args.settle_seconds, args.upstream_keepalive = 4.0, 1.0
    if args.settle_seconds <= args.upstream_keepalive and args.settle_seconds <= IDLE_EXPIRY_SECONDS:
        parser.error("--settle-seconds must outlast the fakes' --upstream-keepalive or the proxy's idle limit")
    work = Path(tempfile.mkdtemp(prefix="cliproxy-soak-"))
    status = 1
    try:
        import uvloop

        status = uvloop.run(soak(args, work))
        return status
    finally:
        if args.keep or status != 0:
            print(f"run directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
