"""Many open streams on one worker: time to first byte added by the proxy, and memory per stream.

2,000 concurrent SSE streams (`--streams`) from a fake OpenAI-compatible upstream that sends its
first chunk at once and then one chunk every 200 ms (`--pace-ms`), so the load generator and the
upstream stay far from their limits and the proxy's own cost is what shows. The streams open at
an even rate over `--ramp` seconds and each lasts until `--hold` seconds after the last one
opened, so all of them are open at once for that long.

Three processes, so the proxy's memory is its own: the fake upstream (`--role upstream`), the load
generator (`--role load`) and `python -m cliproxy` (`workers: 1`, one `openai-compatibility`
provider on the fake upstream, same-dialect passthrough). Two runs with the same schedule:
  direct    load generator → upstream (the baseline)
  cliproxy  load generator → cliproxy → upstream
TTFB is from the start of the connect to the first byte of the first `data:` event. Reported:
TTFB p50 and p99 of both, the difference (TTFB added), and RSS per open stream: the proxy's RSS
while all streams are open, minus its RSS when idle after a warm-up, divided by the streams.
Goals (issue 21, one worker): TTFB added <= 5 ms p50 and <= 100 KiB per stream.
The open-file limit is raised to the hard limit for every process (each stream holds two
descriptors in the proxy). On a 2-core machine the three processes share the cores.

Usage: `python bench/many_streams.py [--streams 2000] [--ramp 10] [--hold 3] [--pace-ms 200]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passthrough import cpu_seconds, free_port  # the sibling benchmark's process helpers

CLIENT_KEY = "sk-bench-client"
BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Count slowly."}], "stream": True},
    separators=(",", ":"),
).encode()
CHUNK = (
    b'data: {"id":"chatcmpl-many","object":"chat.completion.chunk","created":1764700000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" tick"},"finish_reason":null}]}\n\n'
)
DONE = b"data: [DONE]\n\n"
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
TARGET_TTFB_ADDED_MS, TARGET_KIB_PER_STREAM = 5.0, 100.0

CONFIG = """\
host: 127.0.0.1
port: {port}
auth-dir: {auth_dir}
api-keys: [{key}]
debug: false
request-log: false
log-requests: false
request-retry: 0
workers: 1
openai-compatibility:
  - name: fake
    base-url: http://127.0.0.1:{upstream}/v1
    api-key-entries:
      - api-key: sk-up-1
    models:
      - name: gpt-4o-mini
        alias: gpt-4o-mini
"""


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# -- the fake upstream ---------------------------------------------------------------------------


class PacedUpstream(asyncio.Protocol):
    """Answers every POST with a stream: the first chunk at once, then one every `pace` seconds."""

    pace = 0.2
    events = 50

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.timer is not None:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at > 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        del self.buf[: end + 4 + length]
        assert self.transport is not None
        self.sent = 1
        self.transport.write(STREAM_HEAD + _chunked(CHUNK))
        self.timer = asyncio.get_running_loop().call_later(self.pace, self.tick)

    def tick(self) -> None:
        if self.transport is None:
            return
        if self.sent < self.events:
            self.sent += 1
            self.transport.write(_chunked(CHUNK))
            self.timer = asyncio.get_running_loop().call_later(self.pace, self.tick)
        else:
            self.transport.write(_chunked(DONE) + b"0\r\n\r\n")
            self.timer = None
            if self.buf:  # a pipelined request (never sent by the proxy; kept for completeness)
                self.data_received(b"")


async def run_upstream(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(PacedUpstream, "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


# -- the load generator --------------------------------------------------------------------------


class StreamClient(asyncio.Protocol):
    """One request on its own connection; notes when the first event and the end arrive."""

    def __init__(self, request: bytes, load: Load) -> None:
        self.request, self.load = request, load
        self.started = time.perf_counter()
        self.first: float | None = None
        self.ok = False
        self.head = b""
        self.tail = b""
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            self.head += data
            if b"data:" in self.head:
                self.first = time.perf_counter()
                self.ok = self.head.startswith(b"HTTP/1.1 200")
                self.load.opened()
        self.tail = (self.tail + data)[-64:]
        if self.tail.endswith(b"0\r\n\r\n") and b"[DONE]" in self.tail:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ok = self.ok and b"[DONE]" in self.tail
        if not self.done.done():
            self.done.set_result(None)


class Load:
    """`streams` connections opened at an even rate over `ramp` seconds; says when all are open."""

    def __init__(self, host: str, port: int, path: str, streams: int) -> None:
        self.host, self.port, self.streams = host, port, streams
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {CLIENT_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.clients: list[StreamClient] = []
        self.first_events = 0
        self.errors = 0
        self.all_open = asyncio.Event()

    def opened(self) -> None:
        self.first_events += 1
        self._check()

    def failed(self) -> None:
        self.errors += 1
        self._check()

    def _check(self) -> None:
        if self.first_events + self.errors >= self.streams:
            self.all_open.set()

    async def one(self) -> None:
        client = StreamClient(self.request, self)
        self.clients.append(client)
        try:
            await asyncio.get_running_loop().create_connection(lambda: client, self.host, self.port)
        except OSError:
            self.failed()
            return
        await client.done
        if client.first is None:  # closed before any event: never counted as open
            self.failed()

    async def run(self, ramp: float) -> dict[str, Any]:
        begin = time.perf_counter()
        tasks = []
        for i in range(self.streams):
            delay = begin + ramp * i / self.streams - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one()))
        await self.all_open.wait()
        print("ALLOPEN", flush=True)
        await asyncio.gather(*tasks)
        ttfb = sorted((c.first - c.started) * 1000 for c in self.clients if c.ok and c.first is not None)
        by_start = [(c.first - c.started) * 1000 for c in self.clients if c.ok and c.first is not None]
        quarters = [by_start[i * len(by_start) // 4 : (i + 1) * len(by_start) // 4] for i in range(4)]
        slow = [
            (round(c.started - begin, 2), round((c.first - c.started) * 1000))
            for c in self.clients
            if c.first is not None and c.first - c.started > 0.1
        ]
        return {
            "slow_starts": slow[:5] + (["…"] if len(slow) > 10 else []) + slow[-5:] if len(slow) > 10 else slow,
            "slow": len(slow),
            "p99_by_quarter_ms": [
                round(statistics.quantiles(q, n=100)[98], 1) if len(q) > 1 else None for q in quarters
            ],
            "streams": self.streams,
            "ok": len(ttfb),
            "errors": self.streams - len(ttfb),
            "ttfb_p50_ms": statistics.median(ttfb) if ttfb else None,
            "ttfb_p99_ms": statistics.quantiles(ttfb, n=100)[98] if len(ttfb) > 1 else None,
        }


# -- the run -------------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def pinned(cmd: list[str], cpu: str) -> list[str]:
    """`cmd` on the CPUs `cpu` (nothing pinned when taskset is missing or `cpu` is empty)."""
    return ["taskset", "-c", cpu, *cmd] if cpu and shutil.which("taskset") else cmd


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """In the run's directory: `python -m cliproxy` must not import a checkout from the cwd."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, env={**os.environ, **(env or {})}
        )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def post_stream(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=BODY,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()
        return int(resp.status)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"cliproxy exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("cliproxy never became healthy") from None
            time.sleep(0.05)


def run_load_process(port: int, path: str, args: argparse.Namespace, on_all_open: Any = None) -> dict[str, Any]:
    """The load generator in its own process; `on_all_open()` runs when it says every stream is open."""
    cmd = [sys.executable, __file__, "--role", "load", "--port", str(port), "--path", path]
    cmd += ["--streams", str(args.streams), "--ramp", str(args.ramp), "--load-cpu", ""]
    proc = subprocess.Popen(pinned(cmd, args.load_cpu), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    sample = None
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("ALLOPEN") and on_all_open is not None:
            time.sleep(min(0.5, args.hold / 4))  # let the last streams' buffers settle
            sample = on_all_open()
        elif line.startswith("LOADJSON "):
            result = json.loads(line[9:])
    proc.wait()
    if on_all_open is not None:
        result["sample"] = sample
    return result


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the streams open")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds all streams stay open together")
    parser.add_argument("--pace-ms", type=float, default=200.0)
    parser.add_argument("--sut-cpu", default="0", help="CPU list for cliproxy ('' to leave it unpinned)")
    parser.add_argument("--load-cpu", default="1", help="CPU list for the upstream and the load generator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (config, logs)")
    parser.add_argument("--baseline", metavar="DIR", help="run cliproxy from this source checkout instead")
    parser.add_argument("--role", choices=["upstream", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    if args.role == "upstream":
        import uvloop

        PacedUpstream.pace, PacedUpstream.events = args.pace_ms / 1000, args.events
        uvloop.run(run_upstream(args.port))
        return 0
    if args.role == "load":
        import uvloop

        result = uvloop.run(Load("127.0.0.1", args.port, args.path, args.streams).run(args.ramp))
        print("LOADJSON " + json.dumps(result), flush=True)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="cliproxy-many-streams-"))
    up_port, our_port = free_port(), free_port()
    events = int((args.ramp + args.hold) * 1000 / args.pace_ms) + 1
    (tmp / "auths").mkdir()
    config = tmp / "config.yaml"
    config.write_text(CONFIG.format(port=our_port, auth_dir=tmp / "auths", key=CLIENT_KEY, upstream=up_port))
    env = {"PYTHONPATH": str(Path(args.baseline).resolve())} if args.baseline else {}
    up_cmd = [sys.executable, __file__, "--role", "upstream", "--port", str(up_port)]
    up_cmd += ["--pace-ms", str(args.pace_ms), "--events", str(events)]
    upstream = proxy = None
    try:
        upstream = spawn(pinned(up_cmd, args.load_cpu), tmp / "upstream.log")
        our_cmd = [sys.executable, "-m", "cliproxy", "--config", str(config)]
        proxy = spawn(pinned(our_cmd, args.sut_cpu), tmp / "cliproxy.log", env)
        wait_ready(proxy, our_port)
        print(
            f"{args.streams} streams opened over {args.ramp:g} s, all open together for {args.hold:g} s, "
            f"one chunk per {args.pace_ms:g} ms ({events} chunks a stream); cliproxy (workers: 1) on CPU "
            f"{args.sut_cpu or 'any'}, the upstream and the load generator (separate processes) on CPU "
            f"{args.load_cpu or 'any'}; the machine's other load shows in p99",
            flush=True,
        )
        direct = run_load_process(up_port, "/v1/chat/completions", args)
        print(f"  direct    {direct}", flush=True)
        for _ in range(3):  # warm-up: lazy imports, the price table, the upstream pool
            post_stream(our_port)
        warm = run_load_process(
            our_port, "/v1/chat/completions", argparse.Namespace(**{**vars(args), "streams": 50, "ramp": 0.5})
        )
        del warm
        time.sleep(1.0)
        idle = rss_kib(proxy.pid)
        cpu_before, wall_before = cpu_seconds(proxy.pid), time.monotonic()
        ours = run_load_process(our_port, "/v1/chat/completions", args, on_all_open=lambda: rss_kib(proxy.pid))
        loaded = ours.pop("sample")
        busy = (cpu_seconds(proxy.pid) - cpu_before) / (time.monotonic() - wall_before)
        ours["proxy_cpu_share"] = round(busy, 2)
        print(f"  cliproxy  {ours}", flush=True)
        added50 = ours["ttfb_p50_ms"] - direct["ttfb_p50_ms"] if ours["ttfb_p50_ms"] and direct["ttfb_p50_ms"] else None
        added99 = ours["ttfb_p99_ms"] - direct["ttfb_p99_ms"] if ours["ttfb_p99_ms"] and direct["ttfb_p99_ms"] else None
        per_stream = (loaded - idle) / args.streams if loaded else None
        print("\n  target    TTFB p50  TTFB p99  errors")
        for name, r in (("direct", direct), ("cliproxy", ours)):
            print(f"  {name:9s} {fmt(r['ttfb_p50_ms']):>8s} {fmt(r['ttfb_p99_ms']):>9s} {r['errors']:>7d}")
        print(f"\n  TTFB added  p50 {fmt(added50)} ms   p99 {fmt(added99)} ms")
        print(
            f"  cliproxy RSS idle {idle / 1024:,.1f} MiB, with {args.streams} streams open "
            f"{(loaded or 0) / 1024:,.1f} MiB: {fmt(per_stream, 1)} KiB per open stream"
        )
        checks = [
            ("TTFB added p50 ms", added50, TARGET_TTFB_ADDED_MS),
            ("KiB per open stream", per_stream, TARGET_KIB_PER_STREAM),
        ]
        print("\nissue 21 goals (one worker):")
        missed = []
        for name, value, bound in checks:
            ok = value is not None and value <= bound
            missed += [] if ok else [name]
            print(f"  {name:22s} {fmt(value, 2):>8s}  target <= {bound:g}  {'PASS' if ok else 'MISS'}")
        if direct["errors"] or ours["errors"]:
            print(f"  errors: direct {direct['errors']}, cliproxy {ours['errors']}")
        print("all goals met" if not missed else f"missed: {', '.join(missed)}")
    finally:
        stop(proxy)
        stop(upstream)
        if args.keep:
            print(f"config and logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
