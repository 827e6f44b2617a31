"""Recording usage: one `UsageRecord` per request, written exactly once however the request ends.

The recorder follows a request through its attempts (which credential, which upstream model, the
time to the first byte, token counts) and writes the record when the outcome is consumed or closed,
or when routing gives up. Passthrough streams are scanned for usage on the side, parsing only the
SSE events that mention it, so the bytes themselves are never held back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from multidict import istr

from cliproxy import jsonio
from cliproxy.routing.call import Call
from cliproxy.routing.catalog import Candidate
from cliproxy.translate import Dialect
from cliproxy.translate.ir import Usage
from cliproxy.translate.usage import native_input_tokens, usage_of_event
from cliproxy.usage import AttemptFailure, UsageRecord, UsageStore

MAX_SCAN_TAIL = 1 << 20  # bytes of an unfinished SSE block kept while looking for its usage
_USER_AGENT = istr("User-Agent")
_X_FORWARDED_FOR = istr("X-Forwarded-For")
# Usage records hold plain strings: sqlite3 binds a `str` subclass such as a `Dialect` only after
# its full adaptation protocol, which cost more than the rest of a row's binding.
_DIALECT_NAME = {dialect: dialect.value for dialect in Dialect}


class UsageRecorder:
    """Collects what one request's usage record needs; `done()` writes it exactly once."""

    __slots__ = (
        "alias",
        "attempts",
        "auth_index",
        "call",
        "committed",
        "cred_id",
        "failures",
        "provider",
        "release",
        "start",
        "store",
        "tokens",
        "ttft",
        "upstream",
        "upstream_dialect",
        "upstream_model",
        "written",
    )

    def __init__(self, store: UsageStore, call: Call) -> None:
        self.store = store
        self.call = call
        self.start = time.monotonic()
        self.alias = call.model
        self.cred_id = ""
        self.auth_index = ""
        self.provider = ""
        self.upstream_model = ""
        self.upstream_dialect: str = ""
        self.upstream: Dialect | None = None
        self.ttft: float | None = None
        self.tokens: Usage | None = None
        self.attempts = 0
        self.committed = False  # the dispatcher returned an answer of the last attempt
        self.failures: list[AttemptFailure] | None = None  # only allocated when an attempt fails
        self.written = False
        self.release: Callable[[], None] | None = None  # the key's concurrency slot, if it holds one
        store.in_flight += 1

    def attempt(self, cand: Candidate, upstream_model: str) -> None:
        cred = cand.credential
        self.attempts += 1
        self.cred_id, self.auth_index, self.provider = cred.id, cred.auth_index, cred.provider
        self.upstream_model, self.upstream_dialect = upstream_model, _DIALECT_NAME[cred.executor.dialect]
        self.upstream = cred.executor.dialect

    def failed(self, outcome: str) -> None:
        """The last attempt failed; `outcome` says what the retry loop made of it."""
        failure = AttemptFailure(self.provider, self.cred_id, outcome)
        if self.failures is None:
            self.failures = [failure]
        else:
            self.failures.append(failure)

    def first_byte(self) -> None:
        if self.ttft is None:
            self.ttft = (time.monotonic() - self.start) * 1000.0

    def add_tokens(self, tokens: Usage | None) -> None:
        if tokens is not None:
            if self.tokens is None:
                self.tokens = tokens
            else:
                self.tokens.merge(tokens)

    def done(self, status: int) -> None:
        if self.written:
            return
        self.written = True
        self.store.in_flight -= 1
        if self.release is not None:
            self.release()
        t = self.tokens or Usage()
        call = self.call
        self.store.add(
            UsageRecord(
                timestamp=time.time(),
                request_id=call.request_id or f"req_{self.store.total:x}",
                client_key=call.client.key_id,
                credential_id=self.cred_id,
                auth_index=self.auth_index,
                provider=self.provider,
                model=self.upstream_model,
                alias=self.alias,
                client_dialect=_DIALECT_NAME[call.dialect],
                upstream_dialect=self.upstream_dialect,
                endpoint=call.endpoint,
                status=status,
                failed=status >= 400,
                latency_ms=(time.monotonic() - self.start) * 1000.0,
                ttft_ms=self.ttft,
                input_tokens=native_input_tokens(self.upstream, t) if self.upstream else t.input_tokens,
                output_tokens=t.output_tokens,
                cached_tokens=t.cached_tokens,
                reasoning_tokens=t.reasoning_tokens,
                cache_creation_tokens=t.cache_creation_tokens,
                total_tokens=t.total_tokens,
                stream=call.stream,
                attempts=self.attempts,
                client_ip=call.client_ip,
                x_forwarded_for=call.headers.get(_X_FORWARDED_FOR, ""),
                user_agent=call.headers.get(_USER_AGENT, ""),
                reasoning_effort=reasoning_effort(call.body),
                service_tier=str(call.body.get("service_tier") or ""),
                committed=self.committed,
                failed_attempts=tuple(self.failures) if self.failures else (),
            )
        )


def reasoning_effort(body: dict[str, Any]) -> str:
    """The effort a client asked for (chat `reasoning_effort`, Responses `reasoning.effort`), or ''."""
    effort = body.get("reasoning_effort")
    if effort is None:
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else ""


def scan_usage(dialect: Dialect, data: bytes, rec: UsageRecorder) -> None:
    """Token counts from complete SSE blocks that mention usage (cheap: most blocks are skipped)."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    for block in data.split(b"\n\n"):
        if b"usage" not in block:
            continue
        for line in block.split(b"\n"):
            if line.startswith(b"data:") and b"usage" in line:
                try:
                    rec.add_tokens(usage_of_event(dialect, jsonio.loads(line[5:])))
                except ValueError:
                    pass


class StreamUsageScanner:
    """Follows a stream chunk by chunk, parsing only the events that mention usage."""

    __slots__ = ("dialect", "rec", "tail")

    def __init__(self, dialect: Dialect, rec: UsageRecorder) -> None:
        self.dialect = dialect
        self.rec = rec
        self.tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.tail and b"usage" not in chunk:
            return
        data = self.tail + chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self.tail = data if len(data) < MAX_SCAN_TAIL else b""
            return
        rest = data[cut + 2 :]
        self.tail = rest if b"usage" in rest else b""
        scan_usage(self.dialect, data[:cut], self.rec)

    def finish(self) -> None:
        if self.tail:
            scan_usage(self.dialect, self.tail, self.rec)
            self.tail = b""
