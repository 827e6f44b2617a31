"""Paced-stream load client: N workers loop POSTs and time each SSE answer.

Per stream: TTFB (request sent → first bytes holding `data:`) and total time; a stream that does not
end with `[DONE]` or answers non-200 counts as an error. Bounded by `--duration`; in-flight streams
finish. Prints one line: `STREAMJSON {...}`.

Usage: `python bench/harness/streams.py URL --body FILE -c 64 -d 5 [-H 'Name: value']`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp
import uvloop


async def run(args: argparse.Namespace) -> dict[str, object]:
    with open(args.body, "rb") as f:
        body = f.read()
    headers = {"Content-Type": "application/json"}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    ttfb: list[float] = []
    total: list[float] = []
    errors = 0
    deadline = time.perf_counter() + args.duration
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                first = None
                tail = b""
                try:
                    async with session.post(args.url, data=body, headers=headers) as resp:
                        async for chunk in resp.content.iter_any():
                            if first is None and b"data:" in chunk:
                                first = time.perf_counter()
                            tail = (tail + chunk)[-32:]
                        ok = resp.status == 200 and b"[DONE]" in tail
                except aiohttp.ClientError:
                    ok = False
                if not ok or first is None:
                    errors += 1
                    continue
                ttfb.append(first - t0)
                total.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "completed": len(total),
        "errors": errors,
        "streams_per_s": len(total) / elapsed,
        "ttfb_p50_ms": statistics.median(ttfb) * 1000 if ttfb else None,
        "ttfb_p99_ms": statistics.quantiles(ttfb, n=100)[98] * 1000 if len(ttfb) > 1 else None,
        "total_p50_ms": statistics.median(total) * 1000 if total else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--body", required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("-H", "--header", action="append", default=[])
    print("STREAMJSON " + json.dumps(uvloop.run(run(parser.parse_args()))), flush=True)
