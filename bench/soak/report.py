"""The soak's summary: what was asked, what was injected, what the proxy's memory and descriptors
did, and each check with its verdict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

MIB = 1024


@dataclass(frozen=True)
class Limits:
    rss_growth: float | None  # share; None: reported, not judged
    fd_slack: int
    stall_seconds: float
    attempts: int  # per client request: credentials × rounds
    rounds: int  # per client request and credential
    back_after_429: float


def progress(sample: Any, results: list[Any]) -> None:
    fails = sum(1 for r in results if r.outcome == "FAIL")
    print(
        f"  t={sample.at:6.0f}s  rss={sample.rss_kb / MIB:6.1f} MiB  fds={sample.fds:4d}  "
        f"in flight={sample.in_flight:3d}  requests={sample.done:6d}  failures={fails}",
        flush=True,
    )


@dataclass
class Summary:
    minutes: float
    concurrency: int
    seed: int
    results: list[Any]
    stats: dict[str, Any]
    samples: list[Any]
    start: Any
    warm_up: Any  # quiet samples: at the end of warm-up, at the end of the traffic
    traffic_end: Any
    end: Any  # once idle connections have expired
    log_problems: list[str]
    limits: Limits

    def print(self) -> int:
        """Print everything; returns the exit status (0: every check passed)."""
        results = self.results
        outcomes = Counter(r.outcome for r in results)
        print(f"\n== cliproxy soak: {self.minutes:g} min, {self.concurrency} clients in flight, seed {self.seed}")
        print(
            f"requests: {len(results)}  ok {outcomes['ok']}  left on purpose {outcomes['left']}  "
            f"allowed errors {outcomes['error']}  FAILED {outcomes['FAIL']}"
        )
        self.print_table()
        errors = Counter(r.detail for r in results if r.outcome == "error")
        if errors:
            print("errors the proxy gave (allowed under faults), by kind:")
            for label, count in errors.most_common(25):
                print(f"  {count:6d}  {label}")
        failures = Counter(r.detail for r in results if r.outcome == "FAIL")
        if failures:
            print("FAILURES:")
            for label, count in failures.most_common(40):
                print(f"  {count:6d}  {label}")
        self.print_faults()
        self.print_resources()
        return self.print_checks(failures)

    def print_table(self) -> None:
        rows: dict[tuple[str, str, str], Counter[str]] = {}
        for r in self.results:
            key = (r.dialect, r.kind, "stream" if r.stream else "whole")
            rows.setdefault(key, Counter())[r.outcome] += 1
        print(
            f"  {'client':10s} {'via':4s} {'kind':6s} {'total':>7s} {'ok':>7s} {'left':>6s} {'error':>6s} {'FAIL':>5s}"
        )
        for (dialect, kind, shape), c in sorted(rows.items()):
            print(
                f"  {dialect:10s} {kind:4s} {shape:6s} {sum(c.values()):7d} {c['ok']:7d} {c['left']:6d} "
                f"{c['error']:6d} {c['FAIL']:5d}"
            )
        by_upstream = Counter(r.upstream for r in self.results)
        same = sum(1 for r in self.results if r.upstream == r.dialect)
        print(
            f"  models asked: {dict(sorted(by_upstream.items()))}; same dialect (passthrough) {same}, "
            f"translated {len(self.results) - same}"
        )

    def print_faults(self) -> None:
        stats = self.stats
        upstream_requests = sum(stats["requests"].values())
        faults = {k: v for k, v in stats["faults"].items() if k != "ok"}
        injected = sum(faults.values())
        share = injected / upstream_requests if upstream_requests else 0.0
        print(
            f"upstream requests: {upstream_requests} {stats['requests']}; faults injected: {injected} ({share:.1%}), "
            f"plus {sum(stats['hints'].values()) - stats['faults'].get('storm_429', 0)} 429s inside storms"
        )
        for kind, count in sorted(faults.items(), key=lambda kv: -kv[1]):
            print(f"  {count:6d}  {kind}")
        print(f"429 answers by retry hint: {dict(sorted(stats['hints'].items()))}")
        print(f"storms started by hint: {dict(sorted(stats['storms'].items()))}")
        print(
            f"streams the proxy stopped reading (clients gone): {stats['abandoned']}; "
            f"upstream connections: {stats['connections']}"
        )
        print(
            f"longest stall the proxy sat through: {stats['held']} s; "
            f"stalls it never gave up on: {stats['held_to_cap']}"
        )
        print(
            f"upstream attempts per client request: {stats['attempts_per_request']}; "
            f"most on one credential: {stats['most_on_one_credential']}"
        )
        print(
            f"longest wait before a credential was used again after a 429: {stats['back_after_429']} s "
            f"(after hint {stats['back_after_style'] or '-'})"
        )

    def print_resources(self) -> None:
        def mib(kb: int) -> str:
            return f"{kb / MIB:.1f} MiB"

        w, t, e = self.warm_up, self.traffic_end, self.end
        print("proxy process: RSS; open descriptors")
        print(f"  start, before any traffic           {mib(self.start.rss_kb):>10s}; {self.start.fds:4d}")
        print(f"  after warm-up, quiet (t={w.at:5.0f} s)   {mib(w.rss_kb):>10s}; {w.fds:4d}")
        print(
            f"  end of traffic, quiet (t={t.at:5.0f} s)  {mib(t.rss_kb):>10s}; {t.fds:4d}  "
            f"(RSS {self.growth():+.1%} since warm-up)"
        )
        print(f"  end, idle connections gone (t={e.at:4.0f} s) {mib(e.rss_kb):>10s}; {e.fds:4d}")
        during = [s for s in self.samples if 0 <= s.at <= t.at]
        if during:
            peak = max(during, key=lambda s: s.rss_kb)
            most = max(during, key=lambda s: s.fds)
            print(
                f"  under traffic: RSS peak {mib(peak.rss_kb)} (t={peak.at:.0f} s), descriptors peak {most.fds} "
                f"(t={most.at:.0f} s); {len(self.samples)} samples"
            )

    def growth(self) -> float:
        base = self.warm_up.rss_kb
        return (self.traffic_end.rss_kb - base) / base if base else 0.0

    def print_checks(self, failures: Counter[str]) -> int:
        lim = self.limits
        stats = self.stats
        growth = self.growth()
        hangs = sum(c for label, c in failures.items() if "hang" in label)
        attempts = [int(k) for k in stats["attempts_per_request"]]
        held = max(stats["held"].values(), default=0.0)
        checks = [
            ("every client request ended", hangs == 0, f"{hangs} hung"),
            (
                "no failure (no 500, no 5xx but 502/504/upstream's, no bad answer)",
                not failures,
                f"{sum(failures.values())} failed",
            ),
            (
                f"RSS grew < {lim.rss_growth:.0%} after warm-up"
                if lim.rss_growth
                else "RSS (not judged in a smoke run)",
                lim.rss_growth is None or growth < lim.rss_growth,
                f"{growth:+.1%}",
            ),
            (
                f"descriptors back to the start count (+{lim.fd_slack})",
                self.end.fds <= self.start.fds + lim.fd_slack,
                f"{self.start.fds} -> {self.end.fds}",
            ),
            (
                "stalls ended by the proxy's timeouts",
                stats["held_to_cap"] == 0 and held <= lim.stall_seconds,
                f"longest {held:.2f} s, limit {lim.stall_seconds:g} s",
            ),
            (
                "no hidden re-sends",
                max(attempts, default=0) <= lim.attempts and stats["most_on_one_credential"] <= lim.rounds,
                f"at most {max(attempts, default=0)} upstream requests per client request (limit {lim.attempts}), "
                f"{stats['most_on_one_credential']} on one credential (limit {lim.rounds}: one per round)",
            ),
            (
                "bogus retry hints capped",
                stats["back_after_429"] <= lim.back_after_429,
                f"longest {stats['back_after_429']} s, limit {lim.back_after_429:g} s",
            ),
            ("no traceback in the proxy's log", not self.log_problems, f"{len(self.log_problems)} lines"),
        ]
        print("checks:")
        ok = True
        for name, passed, detail in checks:
            ok = ok and passed
            print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")
        for line in self.log_problems[:10]:
            print(f"    log: {line[:200]}")
        print("SOAK PASSED" if ok else "SOAK FAILED")
        return 0 if ok else 1
