"""Where an API request's end is observed: its one summary log line and its request metrics.

A request routed to an upstream ends with its usage record (`routed`, a usage subscriber placed
after the accountant, so the record carries its cost when the price is known). A request answered
before routing (a bad key, a body that is not JSON, an unknown model, a key's limit) has no usage
record: the response hook reports it (`refused`) when its error status is prepared. The ids of
failed routed requests are remembered for a while so that their error response is not reported a
second time. A Responses WebSocket logs one line per response it carries.

The line goes to the `cliproxy.requests` logger at INFO (`log-requests: false` turns it off: it
costs about 15 µs of CPU per request, mostly in `logging`): `key=value` pairs in the text format,
the same fields as JSON keys with `log-format: json`. Every value is an id, a name, a number or the
model a client asked for; the log redactor still masks any configured secret in the line, and a
value with spaces, quotes or control characters is quoted, so a client cannot forge a line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.metrics.labels import OTHER
from cliproxy.metrics.registry import Metrics
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import CLIENT, REQUEST_ID, route_dialect
from cliproxy.usage import UsageRecord

log = logging.getLogger("cliproxy.requests")

REMEMBERED_FAILURES = 1024  # ids of failed routed requests waiting for their error response
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


def emit(fields: dict[str, Any]) -> None:
    """Log one request line (the record is built directly: `Logger.info` would also walk the stack
    to find its caller, which nobody reads here)."""
    record = logging.LogRecord(log.name, logging.INFO, __file__, 0, logfmt(fields), None, None)
    record.__dict__["fields"] = fields
    log.handle(record)


class RequestEnds:
    """The end of every API request: `routed` for usage records, `refused` from the response hook."""

    __slots__ = ("_answered", "holder", "metrics")

    def __init__(self, metrics: Metrics, holder: RuntimeHolder) -> None:
        self.metrics = metrics
        self.holder = holder
        self._answered: dict[str, bool] = {}  # insertion-ordered: the oldest id is dropped first

    def routed(self, record: UsageRecord) -> None:
        """The usage subscriber: count the request and write its line."""
        self.metrics.observe(record)
        if record.status >= 400 and record.request_id:
            answered = self._answered
            answered[record.request_id] = True
            if len(answered) > REMEMBERED_FAILURES:
                del answered[next(iter(answered))]
        if self.holder.current.config.log_requests and log.isEnabledFor(logging.INFO):
            emit(routed_fields(record))

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
            emit(
                {
                    "request_id": request_id,
                    "client_key": client.key_id if client is not None else "",
                    "route": request.path,
                    "dialect": dialect,
                    "status": status,
                    "attempts": 0,
                }
            )
