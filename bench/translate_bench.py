"""CPU cost of cross-dialect translation: per translated request and per streamed chunk.

Usage: `python bench/translate_bench.py [--scale N] [--litellm]`. Measures `time.process_time` (CPU, not wall)
over many iterations of `translate_request` on recorded client bodies (Claude Code, Codex CLI and
small SDK requests), `translate_response`, and `StreamTranslator.feed` on recorded upstream streams
(tests/fixtures). Budget (issue 4): ≤ 500 µs per request and ≤ 20 µs per chunk; litellm spends
8–17 ms and 400–500 µs. `--litellm` also times litellm's own translators on the same inputs (Claude Code
request → OpenAI, chat answer → Anthropic, Anthropic stream events → chat chunks) and prints the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cliproxy import jsonio  # noqa: E402
from cliproxy.translate import Dialect  # noqa: E402
from cliproxy.translate.convert import StreamTranslator, translate_request, translate_response  # noqa: E402
from cliproxy.translate.sse import SSEEvent, SSEParser  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REQUEST_BUDGET_US = 500.0
CHUNK_BUDGET_US = 20.0

STREAMS = {
    Dialect.CHAT: "openai_chat_stream.txt",
    Dialect.RESPONSES: "openai_responses_stream.txt",
    Dialect.CLAUDE: "anthropic_stream.txt",
    Dialect.GEMINI: "gemini_stream.txt",
}
SMALL: dict[Dialect, dict[str, Any]] = {
    Dialect.CHAT: {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    Dialect.RESPONSES: {"model": "m", "input": "hi", "stream": True},
    Dialect.CLAUDE: {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    Dialect.GEMINI: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}


def cpu_us(fn: Callable[[], object], n: int) -> float:
    """CPU microseconds per call of `fn`, best of three runs of `n` calls."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def events(dialect: Dialect) -> list[SSEEvent]:
    raw = (FIXTURES / "wire" / STREAMS[dialect]).read_bytes()
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    parser = SSEParser()
    return parser.feed(raw.partition(sep)[2]) + parser.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    ap.add_argument("--litellm", action="store_true", help="also time litellm's translators (slow import)")
    args = ap.parse_args()
    n_req = max(10, int(300 * args.scale))
    n_stream = max(10, int(2000 * args.scale))
    worst_req = worst_chunk = 0.0

    print("per translated request (CPU µs)         translate  +json parse/dump")
    cases: list[tuple[str, Dialect, bytes]] = [
        ("Claude Code (18 KB, 12 tools)", Dialect.CLAUDE, (FIXTURES / "requests" / "claude_code.json").read_bytes()),
        (
            "Codex CLI tool loop (15 KB)",
            Dialect.RESPONSES,
            (FIXTURES / "requests" / "codex_toolloop.json").read_bytes(),
        ),
    ]
    cases += [(f"small {d.value} SDK request", d, jsonio.dumps(body)) for d, body in SMALL.items()]
    for label, src, raw in cases:
        body = jsonio.loads(raw)
        for dst in Dialect:
            if dst is src:
                continue

            def one(body: dict[str, Any] = body, src: Dialect = src, dst: Dialect = dst) -> object:
                return translate_request(body, src, dst, model="up-model", stream=True)

            def full(raw: bytes = raw, src: Dialect = src, dst: Dialect = dst) -> object:
                return jsonio.dumps(translate_request(jsonio.loads(raw), src, dst, model="up-model", stream=True))

            t, tf = cpu_us(one, n_req), cpu_us(full, n_req)
            worst_req = max(worst_req, tf)
            print(f"  {label:34s} {src.value:>9s}->{dst.value:<9s} {t:8.1f}  {tf:8.1f}")

    print("\nper non-stream response (CPU µs)")
    for src in Dialect:
        body = jsonio.loads(jsonio.dumps(_nonstream(src)))
        for dst in Dialect:
            if dst is not src:
                t = cpu_us(lambda b=body, s=src, d=dst: translate_response(b, s, d, model="m"), n_req * 5)
                worst_req = max(worst_req, t)
                print(f"  {src.value:>9s}->{dst.value:<9s} {t:8.1f}")

    print("\nper streamed chunk (CPU µs, upstream event in -> client bytes out)")
    for src in Dialect:
        evs = events(src)
        for dst in Dialect:
            if dst is src:
                continue

            def run(evs: list[SSEEvent] = evs, src: Dialect = src, dst: Dialect = dst) -> object:
                tr = StreamTranslator(src, dst, model="client-model")
                for ev in evs:
                    tr.feed(ev)
                return tr.finish()

            per_stream = cpu_us(run, max(10, n_stream // len(evs)))
            per_chunk = per_stream / len(evs)
            worst_chunk = max(worst_chunk, per_chunk)
            print(
                f"  {src.value:>9s}->{dst.value:<9s} {per_chunk:8.2f}   ({len(evs)} events, {per_stream:.1f} µs/stream)"
            )

    print("\nsteady state: one text delta in the middle of a long stream (CPU µs per chunk)")
    for src in Dialect:
        delta = _delta_event(src)
        for dst in Dialect:
            if dst is src:
                continue
            tr = StreamTranslator(src, dst, model="client-model")
            for ev in events(src)[:2]:
                tr.feed(ev)
            tr.feed(delta)
            t = cpu_us(lambda tr=tr, delta=delta: tr.feed(delta), n_stream * 5)
            worst_chunk = max(worst_chunk, t)
            print(f"  {src.value:>9s}->{dst.value:<9s} {t:8.2f}")

    print(f"\nworst request {worst_req:.1f} µs (budget {REQUEST_BUDGET_US:.0f}), ", end="")
    print(f"worst chunk {worst_chunk:.2f} µs (budget {CHUNK_BUDGET_US:.0f})")
    print(f"ratios: request {worst_req / REQUEST_BUDGET_US:.2f} of budget, chunk {worst_chunk / CHUNK_BUDGET_US:.2f}")
    if args.litellm:
        compare_litellm(n_req)
    return 0


def compare_litellm(n: int) -> None:
    """litellm's translators on the same inputs as ours (CPU µs; ratio = litellm / cliproxy)."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "1")
    import litellm
    from litellm.llms.anthropic.chat.handler import ModelResponseIterator
    from litellm.llms.anthropic.pass_through.adapters.transformation import LiteLLMAnthropicMessagesAdapter

    adapter = LiteLLMAnthropicMessagesAdapter()
    claude_code = jsonio.loads((FIXTURES / "requests" / "claude_code.json").read_bytes())
    chat_answer = _nonstream(Dialect.CHAT)
    claude_events = [jsonio.loads(e.data) for e in events(Dialect.CLAUDE)]
    rows = [
        (
            "Claude Code request claude->chat",
            lambda: adapter.translate_anthropic_to_openai(claude_code),
            lambda: translate_request(claude_code, Dialect.CLAUDE, Dialect.CHAT, model="up-model", stream=True),
            1,
        ),
        (
            "non-stream answer chat->claude",
            lambda: adapter.translate_openai_response_to_anthropic(litellm.ModelResponse(**chat_answer)),
            lambda: translate_response(chat_answer, Dialect.CHAT, Dialect.CLAUDE, model="m"),
            1,
        ),
    ]

    def theirs_stream() -> object:
        parser = ModelResponseIterator(None, sync_stream=True)
        return [parser.chunk_parser(ev) for ev in claude_events]

    def ours_stream(evs: list[SSEEvent] = events(Dialect.CLAUDE)) -> object:
        tr = StreamTranslator(Dialect.CLAUDE, Dialect.CHAT, model="m")
        return b"".join(tr.feed(ev) for ev in evs) + tr.finish()

    rows.append(("per stream chunk claude->chat", theirs_stream, ours_stream, len(claude_events)))
    print("\nlitellm on the same inputs (CPU µs)            litellm  cliproxy   ratio")
    for label, theirs, ours, per in rows:
        t_theirs, t_ours = cpu_us(theirs, max(5, n // 5)) / per, cpu_us(ours, n) / per
        print(f"  {label:40s} {t_theirs:9.1f} {t_ours:9.1f} {t_theirs / t_ours:7.1f}x")


def _delta_event(dialect: Dialect) -> SSEEvent:
    """A typical mid-stream text delta of each dialect, as recorded."""
    for ev in events(dialect):
        if b"fake" in ev.data and b'"finishReason"' not in ev.data and b"completed" not in ev.data:
            return ev
    raise LookupError(dialect)


def _nonstream(dialect: Dialect) -> dict[str, Any]:
    data: dict[str, Any] = jsonio.loads((FIXTURES / "nonstream" / f"{dialect.value}_text.json").read_bytes())
    return data


if __name__ == "__main__":
    raise SystemExit(main())
