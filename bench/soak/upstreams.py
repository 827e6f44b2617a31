"""Fake upstreams for `make soak`: one raw-asyncio HTTP/1.1 server per provider dialect, injecting faults.

Raw sockets, so an answer can be anything a broken upstream sends: a stall before the head or in
the middle of a stream, a cut connection, a 429 storm with sane and bogus retry hints, a 200 that is
not an answer, a malformed frame, a gzip bomb, an upstream's own 503/529. Each request draws its fate
from a seeded generator (`--fault-rate` of them are faults); a 429 storm holds one credential for a
few seconds. Everything injected is counted, and so is what the proxy did about it: how long it held
a stalled upstream, how often one request reached the upstreams, how soon a credential came back
after its 429.

Runs as its own process (`soak.py` starts it): `python bench/soak/upstreams.py --seed 7`. Prints
`{"chat": port, "responses": port, "claude": port, "gemini": port}` on its first line, then serves
until SIGTERM; `GET /__soak/stats` on any of the ports answers the counters as JSON, and
`GET /__soak/resume` says the clients paused (a credential unused meanwhile was not held back).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import uvloop
import wire

FAULTS = {  # relative weights among the faults
    "stall_head": 3.0,
    "stall_mid": 3.0,
    "drop_mid": 3.0,
    "storm_429": 0.6,
    "overloaded": 2.0,
    "garbage_html": 1.5,
    "garbage_json": 1.5,  # truncated JSON for a whole answer, a whole JSON body for a stream
    "frame_conflicting_length": 1.0,
    "frame_length_and_chunked": 1.0,
    "frame_bad_chunk": 1.5,
    "frame_bad_status": 0.5,
    "frame_folded_header": 0.5,
    "gzip_bomb": 1.0,
}
BOMB_BYTES = 80 * 1024 * 1024  # inflates past the proxy's 64 MiB cap
HOLD_CAP_SECONDS = 30.0  # a stall lasts until the proxy gives up, or this long
STORM_SECONDS = (1.5, 4.0)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return self.headers.get("x-api-key") or self.headers.get("x-goog-api-key") or ""

    def stream(self, dialect: str) -> bool:
        if dialect == "gemini":
            return ":streamGenerateContent" in self.path
        return b'"stream":true' in self.body.replace(b" ", b"")


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by dialect
    faults: Counter[str] = field(default_factory=Counter)  # by kind
    hints: Counter[str] = field(default_factory=Counter)  # 429s sent, by retry-hint style
    storms: Counter[str] = field(default_factory=Counter)  # storms started, by hint style
    held: dict[str, float] = field(default_factory=dict)  # longest stall the proxy sat through, by kind
    held_to_cap: int = 0  # stalls the proxy never gave up on
    abandoned: int = 0  # answers the proxy stopped reading (client gone)
    connections: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # by request tag
    per_key: Counter[tuple[str, str]] = field(default_factory=Counter)  # by request tag and credential
    last_429: dict[str, tuple[float, str]] = field(default_factory=dict)  # key -> (time, style)
    back_after_429: float = 0.0  # longest wait before a key was used again after a 429
    back_after_style: str = ""

    def as_json(self) -> dict[str, object]:
        per_tag = Counter(self.attempts.values())
        return {
            "requests": dict(self.requests),
            "faults": dict(self.faults),
            "hints": dict(self.hints),
            "storms": dict(self.storms),
            "held": {k: round(v, 2) for k, v in self.held.items()},
            "held_to_cap": self.held_to_cap,
            "abandoned": self.abandoned,
            "connections": self.connections,
            "attempts_per_request": {str(k): v for k, v in sorted(per_tag.items())},
            "most_on_one_credential": max(self.per_key.values(), default=0),
            "back_after_429": round(self.back_after_429, 2),
            "back_after_style": self.back_after_style,
        }


def gzip_bomb() -> bytes:
    """`BOMB_BYTES` of zeros, gzipped (about 80 KB), made without holding the inflated bytes."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    out = [comp.compress(block) for _ in range(BOMB_BYTES // len(block))]
    return b"".join([*out, comp.flush()])


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Fakes:
    """The four servers' shared behaviour and counters."""

    def __init__(
        self, rng: random.Random, fault_rate: float, event_delay: float, keepalive: float, kinds: list[str]
    ) -> None:
        self.rng = rng
        self.fault_rate = fault_rate
        self.event_delay = event_delay
        self.keepalive = keepalive
        self.stats = Stats()
        self.storms: dict[str, tuple[float, str]] = {}  # key -> (until, hint style)
        self.bomb = gzip_bomb()
        self.kinds = kinds or list(FAULTS)
        self.weights = [FAULTS[k] for k in self.kinds]

    async def connection(self, dialect: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            while True:
                try:
                    req = await asyncio.wait_for(read_request(reader), self.keepalive)
                except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return  # idle past our keep-alive, or the proxy hung up
                if req.path.startswith("/__soak/"):
                    if req.path == "/__soak/resume":  # the clients paused: no credential was held back meanwhile
                        self.stats.last_429.clear()
                    body = json.dumps(self.stats.as_json()).encode()
                    writer.write(
                        head("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                    )
                    writer.write(body)
                    await writer.drain()
                    continue
                if not await self.answer(dialect, req, reader, writer):
                    return
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    def fate(self, req: Request) -> str:
        """The fault this request gets (`ok` for none); a key in a 429 storm gets 429s."""
        now = time.monotonic()
        key = req.key
        storm = self.storms.get(key)
        if storm is not None and storm[0] > now:
            return "in_storm"
        if self.rng.random() >= self.fault_rate:
            return "ok"
        return self.rng.choices(self.kinds, self.weights)[0]

    async def answer(self, dialect: str, req: Request, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be used again."""
        stats = self.stats
        now = time.monotonic()
        stats.requests[dialect] += 1
        tags = wire.TAG.findall(req.body)
        tag = tags[-1].decode() if tags else "none"
        stats.attempts[tag] += 1
        stats.per_key[(tag, req.key)] += 1
        key = req.key
        last = stats.last_429.pop(key, None)
        if last is not None and now - last[0] > stats.back_after_429:
            stats.back_after_429, stats.back_after_style = now - last[0], last[1]
        stream = req.stream(dialect)
        model = "soak-upstream"
        kind = self.fate(req)
        if kind != "in_storm":
            stats.faults[kind] += 1
        if kind in ("storm_429", "in_storm"):
            if kind == "storm_429":
                style = self.rng.choice(wire.hint_styles(dialect))
                self.storms[key] = (now + self.rng.uniform(*STORM_SECONDS), style)
                stats.storms[style] += 1
            style = self.storms[key][1]
            stats.hints[style] += 1
            stats.last_429[key] = (now, style)
            body, extra = wire.rate_limited(dialect, style)
            w.write(head("429 Too Many Requests", [("Content-Type", "application/json"), *extra, length(body)]) + body)
            await w.drain()
            return True
        if kind == "overloaded":
            status, body = wire.overloaded(dialect)
            reason = "Overloaded" if status == 529 else "Service Unavailable"
            w.write(head(f"{status} {reason}", [("Content-Type", "application/json"), length(body)]) + body)
            await w.drain()
            return True
        pieces = wire.words_for(tag, self.rng.randint(4, 16))
        rid = f"resp_{tag}_{stats.attempts[tag]}"
        poison = wire.whole(dialect, model, wire.POISON)
        if kind == "stall_head":
            await self.hold(kind, reader)
            return False
        if kind.startswith("garbage"):
            if kind == "garbage_html" or not stream:
                ct = "text/html; charset=utf-8" if kind == "garbage_html" else "application/json"
                body = b"<!DOCTYPE html><title>Just a moment...</title>" + wire.POISON.encode() * 20
                if kind == "garbage_json":
                    body = poison[: len(poison) // 2]
            else:
                ct, body = "application/json", poison  # a stream answered as a whole JSON object
            w.write(head("200 OK", [("Content-Type", ct), length(body)]) + body)
            await w.drain()
            return True
        if kind.startswith("frame") or kind == "gzip_bomb":
            await self.malformed(kind, dialect, model, pieces, stream, w)
            return False
        if not stream:
            body = wire.whole(dialect, model, "".join(pieces), rid)
            if kind in ("stall_mid", "drop_mid"):
                w.write(head("200 OK", [("Content-Type", "application/json"), length(body)]) + body[: len(body) // 2])
                await w.drain()
                await self.cut(kind, reader, w)
                return False
            w.write(head("200 OK", [("Content-Type", "application/json"), length(body)]) + body)
            await w.drain()
            return True
        events = wire.events(dialect, model, pieces, rid)
        w.write(head("200 OK", [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        for i, event in enumerate(events):
            if kind in ("stall_mid", "drop_mid") and i == 2:
                await self.cut(kind, reader, w)
                return False
            await asyncio.sleep(self.event_delay)
            if reader.at_eof() or w.is_closing():
                stats.abandoned += 1
                return False
            w.write(chunk(event))
            try:
                await w.drain()
            except ConnectionError:
                stats.abandoned += 1
                return False
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True

    async def cut(self, kind: str, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Mid-answer: go silent until the proxy gives up, or drop the connection (RST or FIN)."""
        if kind == "stall_mid":
            await self.hold(kind, reader)
        elif self.rng.random() < 0.5:
            w.transport.abort()
        else:
            w.close()

    async def hold(self, kind: str, reader: asyncio.StreamReader) -> None:
        """Say nothing until the proxy closes the connection (its timeout), at most `HOLD_CAP_SECONDS`."""
        start = time.monotonic()
        try:
            await asyncio.wait_for(reader.read(), HOLD_CAP_SECONDS)
        except TimeoutError:
            self.stats.held_to_cap += 1
        except ConnectionError:
            pass
        held = time.monotonic() - start
        self.stats.held[kind] = max(self.stats.held.get(kind, 0.0), held)

    async def malformed(
        self, kind: str, dialect: str, model: str, pieces: list[str], stream: bool, w: asyncio.StreamWriter
    ) -> None:
        """An answer the proxy must refuse (and never relay): broken framing or a gzip bomb."""
        ct = "text/event-stream" if stream else "application/json"
        body = wire.whole(dialect, model, wire.POISON)
        if kind == "frame_conflicting_length":
            out = head("200 OK", [("Content-Type", ct), length(body), ("Content-Length", str(len(body) + 7))]) + body
        elif kind == "frame_length_and_chunked":
            out = head("200 OK", [("Content-Type", ct), length(body), ("Transfer-Encoding", "chunked")])
            out += chunk(body) + b"0\r\n\r\n"
        elif kind == "frame_bad_chunk":
            size = self.rng.choice([b"0x%x", b"+%x", b"%x zz", b"-%x"])
            out = head("200 OK", [("Content-Type", ct), ("Transfer-Encoding", "chunked")])
            if stream:  # a few good events first: the stream is committed when the bad chunk comes
                out += b"".join(chunk(ev) for ev in wire.events(dialect, model, pieces)[:3])
            out += (size % len(body)) + b"\r\n" + body + b"\r\n0\r\n\r\n"
        elif kind == "frame_bad_status":
            out = head("2000 OK", [("Content-Type", ct), length(body)]) + body
        elif kind == "frame_folded_header":
            out = head("200 OK", [("Content-Type", ct), length(body)]).replace(
                b"\r\nContent-Length", b"\r\n Content-Length"
            )
            out += body
        else:  # gzip bomb
            out = head("200 OK", [("Content-Type", ct), ("Content-Encoding", "gzip"), length(self.bomb)]) + self.bomb
        w.write(out)
        with contextlib.suppress(ConnectionError):
            await w.drain()
            await asyncio.sleep(0.05)  # let the proxy read it before the close


def length(body: bytes) -> tuple[str, str]:
    return ("Content-Length", str(len(body)))


async def read_request(reader: asyncio.StreamReader) -> Request:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(size) if size else b""
    return Request(method, target, headers, body)


async def serve(args: argparse.Namespace) -> None:
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown fault kinds: {sorted(unknown)} (known: {sorted(FAULTS)})")
    fakes = Fakes(random.Random(args.seed), args.fault_rate, args.event_delay, args.keepalive, kinds)
    servers = {}
    for dialect in wire.DIALECTS:

        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter, d: str = dialect) -> None:
            await fakes.connection(d, r, w)

        servers[dialect] = await asyncio.start_server(on_connect, "127.0.0.1", 0, backlog=1024)
    ports = {d: s.sockets[0].getsockname()[1] for d, s in servers.items()}
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers.values():
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fault-rate", type=float, default=0.24, help="share of upstream requests that get a fault")
    parser.add_argument("--event-delay", type=float, default=0.02, help="seconds between two stream events")
    parser.add_argument("--kinds", default="", help="comma-separated fault kinds to inject (default: all)")
    parser.add_argument("--keepalive", type=float, default=5.0, help="idle seconds before we close a connection")
    args = parser.parse_args()
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # writes to a closed socket are expected here
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
