"""Where an API request's end is observed: its one summary log line and its request metrics.

A request routed to an upstream ends with its usage record (`routed`, a usage subscriber placed
after the accountant, so the record carries its cost when the price is known). A request answered
before routing (a bad key, a body that is not JSON, an unknown model, a key's limit) has no usage
record: the response hook reports it (`refused`) when its error status is prepared. The ids of
failed routed requests are remembered for a while so that their error response is not reported a
second time. A Responses WebSocket logs one line per response it carries. Lines are written in
batches (`RequestEnds`), each stamped with the time its request ended.

The line goes to the `cliproxy.requests` logger at INFO (`log-requests: false` turns it off):
`key=value` pairs in the text format, the same fields as JSON keys with `log-format: json`. Every
value is an id, a name, a number or the model a client asked for; the log redactor still masks any
configured secret in the line, and a value with spaces, quotes or control characters is quoted, so
a client cannot forge a line.

The line is logged once per request, so it is kept cheap (a few percent of a passthrough
request): the usual routed line is one f-string from the usage record (`routed_line`, with
`logfmt` for a line that needs quoting), and a batch goes to the log handlers through `log_lines`,
which writes it at once to our own handler without a `LogRecord` per line (other handlers, such as
a test's log capture, still get a record each).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.logs import log_lines
from cliproxy.metrics.labels import OTHER
from cliproxy.metrics.registry import Metrics
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import CLIENT, REQUEST_ID, route_dialect
from cliproxy.usage import UsageRecord

log = logging.getLogger("cliproxy.requests")

LINE_BATCH = 256  # lines waiting before they are written at once
LINE_DELAY_SECONDS = 0.2  # the longest a line waits
REMEMBERED_FAILURES = 1024  # ids of failed routed requests waiting for their error response
REMEMBERED_NAMES = 4096  # values of request lines known to need no quoting (see `routed_line`)
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f]').search  # spaces, quotes, `=`, controls


def routed_fields(record: UsageRecord) -> dict[str, Any]:
    """The summary of a routed request, in the order the text line shows it."""
    return {
        "request_id": record.request_id,
        "client_key": record.client_key,
        "route": record.endpoint,
        "dialect": record.client_dialect,
        "model": record.alias,
        "upstream_model": record.model,
        "upstream_dialect": record.upstream_dialect,
        "provider": record.provider,
        "credential": record.credential_id,
        "status": record.status,
        "stream": record.stream,
        "attempts": record.attempts,
        "ttfb_ms": round(record.ttft_ms, 1) if record.ttft_ms is not None else None,
        "duration_ms": round(record.latency_ms, 1),
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_usd": round(record.cost_usd, 8) if record.cost_usd is not None else None,
    }


def logfmt(fields: dict[str, Any]) -> str:
    """`key=value` pairs; None is left out, a string that needs it is quoted as a JSON string.

    One check over all the strings at once first: the usual line (ids, names, numbers) has nothing
    to quote, and this runs once per request."""
    strings = [value for value in fields.values() if value.__class__ is str]
    if all(strings) and not _NEEDS_QUOTES("".join(strings)):
        return " ".join(
            [
                f"{name}={('true' if value else 'false') if value.__class__ is bool else value}"
                for name, value in fields.items()
                if value is not None
            ]
        )
    return " ".join([f"{name}={_quoted(value)}" for name, value in fields.items() if value is not None])


def _quoted(value: Any) -> Any:
    if value.__class__ is str:
        return value if value and not _NEEDS_QUOTES(value) else jsonio.dumps(value).decode()
    return ("true" if value else "false") if value.__class__ is bool else value


def routed_line(record: UsageRecord, plain: set[str]) -> str:
    """`logfmt(routed_fields(record))`, in one f-string when no value needs quoting (the usual line).

    `plain` remembers the values already seen to need no quoting: a line's names (key, route,
    models, provider, credential) repeat from request to request, and looking at every character
    of them again would cost more than the rest of the line. Our request ids are hex digits."""
    names = (
        record.client_key,
        record.endpoint,
        record.client_dialect,
        record.alias,
        record.model,
        record.upstream_dialect,
        record.provider,
        record.credential_id,
    )
    if not plain.issuperset(names):
        if not all(names) or _NEEDS_QUOTES("".join(names)):
            return logfmt(routed_fields(record))
        if len(plain) > REMEMBERED_NAMES:
            plain.clear()
        plain.update(names)
    if not record.request_id.isalnum() and (not record.request_id or _NEEDS_QUOTES(record.request_id)):
        return logfmt(routed_fields(record))
    ttfb = f" ttfb_ms={record.ttft_ms:.1f}" if record.ttft_ms is not None else ""  # as round(x, 1) shows it
    cost = f" cost_usd={round(record.cost_usd, 8)}" if record.cost_usd is not None else ""
    return (
        f"request_id={record.request_id} client_key={record.client_key} route={record.endpoint}"
        f" dialect={record.client_dialect} model={record.alias} upstream_model={record.model}"
        f" upstream_dialect={record.upstream_dialect} provider={record.provider} credential={record.credential_id}"
        f" status={record.status} stream={'true' if record.stream else 'false'} attempts={record.attempts}{ttfb}"
        f" duration_ms={record.latency_ms:.1f} input_tokens={record.input_tokens}"
        f" output_tokens={record.output_tokens} cached_tokens={record.cached_tokens}"
        f" reasoning_tokens={record.reasoning_tokens}{cost}"
    )


class RequestEnds:
    """The end of every API request: `routed` for usage records, `refused` from the response hook.

    Lines are written in batches, at most `LINE_DELAY_SECONDS` after their request ended (stamped
    with its own end time), or as soon as `LINE_BATCH` are waiting: a line formatted between two
    requests costs a few times what it costs in a batch. `flush` writes what is waiting (shutdown).
    """

    __slots__ = ("_answered", "_lines", "_plain", "_timer", "holder", "metrics")

    def __init__(self, metrics: Metrics, holder: RuntimeHolder) -> None:
        self.metrics = metrics
        self.holder = holder
        self._answered: dict[str, bool] = {}  # insertion-ordered: the oldest id is dropped first
        self._lines: list[tuple[float, UsageRecord | dict[str, Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._plain: set[str] = set()  # see `routed_line`

    def routed(self, record: UsageRecord) -> None:
        """The usage subscriber: count the request and queue its line."""
        self.metrics.observe(record)
        if record.status >= 400 and record.request_id:
            answered = self._answered
            answered[record.request_id] = True
            if len(answered) > REMEMBERED_FAILURES:
                del answered[next(iter(answered))]
        if self.holder.current.config.log_requests and log.isEnabledFor(logging.INFO):
            self._queue(record.timestamp, record)

    def refused(self, request: web.Request, response: web.StreamResponse) -> None:
        """An API request's error response is being prepared: report it unless routing already did."""
        request_id = request.get(REQUEST_ID, "")
        if self._answered.pop(request_id, False):
            return
        client = request.get(CLIENT)
        dialect = route_dialect(request).value
        status = response.status
        if self.metrics.enabled:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else OTHER
            self.metrics.requests.refused(route, dialect, status, client.key_id if client is not None else None)
        if self.holder.current.config.log_requests and log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": request_id,
                "client_key": client.key_id if client is not None else "",
                "route": request.path,
                "dialect": dialect,
                "status": status,
                "attempts": 0,
            }
            self._queue(time.time(), fields)

    def _queue(self, created: float, line: UsageRecord | dict[str, Any]) -> None:
        lines = self._lines
        lines.append((created, line))
        if len(lines) >= LINE_BATCH:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(LINE_DELAY_SECONDS, self.flush)
            except RuntimeError:  # no event loop (a record added outside the server): write it now
                self.flush()

    def flush(self) -> None:
        """Write every waiting line, oldest first."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        if lines:
            log_lines(log, [(created, self._message(line), line) for created, line in lines], _fields)

    def _message(self, line: UsageRecord | dict[str, Any]) -> str:
        return routed_line(line, self._plain) if isinstance(line, UsageRecord) else logfmt(line)


def _fields(line: UsageRecord | dict[str, Any]) -> dict[str, Any]:
    return routed_fields(line) if isinstance(line, UsageRecord) else line
