"""The attempt loop: catalog → scheduler → upstream executor → passthrough or translation.

Commit late, fail over early: nothing reaches the client until the first upstream payload (or the
whole body) is known, so any failure before that moves on to the next credential invisibly.
Request faults (the client's own mistakes) go straight back, untouched by retry or cooldown.
Retry rounds follow spec §5.8; a stream gets `streaming.bootstrap-retries` more of them, also after
401 and 402, since nothing has reached its client yet. When the credential speaks the client's
dialect, the upstream bytes are relayed as they arrive with only the model name and auth changed.

Extension points: `policy.admit` runs once per request for keys with limits, before any upstream
call, and its release runs when the usage record is written; `UsageStore.subscribe` (cost,
persistence) sees every record;
`Executor.fresh_auth`/`can_refresh` for OAuth executors (a 401 refreshes once and retries the
same credential).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import istr

from cliproxy import jsonio
from cliproxy.appkeys import POLICY, ROUTING, SESSIONS, USAGE
from cliproxy.clientkeys import ClientIdentity
from cliproxy.policy import PolicyRefusal, admit, check_scope
from cliproxy.routing.catalog import Candidate, Route
from cliproxy.routing.failures import (
    BOOTSTRAP_STATUSES,
    RETRY_ROUND_STATUSES,
    Failure,
    apply_scoped_rules,
    classify,
    client_error,
    status_of_stream_error,
)
from cliproxy.routing.scheduler import RoutingState
from cliproxy.runtime import Runtime
from cliproxy.translate import Dialect, convert
from cliproxy.translate.errors import error_body, stream_error_frame
from cliproxy.translate.ir import Usage
from cliproxy.translate.payload import FROM_PROTOCOL, PROTOCOL, PayloadRules
from cliproxy.translate.sse import DONE_FRAME, SSEEvent, SSEParser
from cliproxy.translate.tokens import count_tokens_estimate
from cliproxy.translate.usage import native_input_tokens, usage_in_answer, usage_of_body, usage_of_event
from cliproxy.upstream.base import Sessions, UpstreamResponse
from cliproxy.usage import UsageRecord, UsageStore

log = logging.getLogger(__name__)

NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
MAX_RETRY_JITTER = 2.0
JSON_CT = "application/json"
SSE_CT = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
_EMPTY_HEADERS: dict[str, str] = {}
# Header names as `istr`: multidict looks them up without case-folding them on every request.
_CONTENT_TYPE = istr("Content-Type")
_USER_AGENT = istr("User-Agent")
_X_FORWARDED_FOR = istr("X-Forwarded-For")
# Usage records hold plain strings: sqlite3 binds a `str` subclass such as a `Dialect` only after
# its full adaptation protocol, which cost more than the rest of a row's binding.
_DIALECT_NAME = {dialect: dialect.value for dialect in Dialect}
COUNTING_DIALECTS = frozenset({Dialect.CLAUDE, Dialect.GEMINI})  # upstreams with a count endpoint


@dataclass(slots=True)
class Call:
    """One client request, parsed once by its dialect's handler."""

    dialect: Dialect  # client dialect
    model: str  # as the client asked (may carry prefix/, alias, "(suffix)")
    body: dict[str, Any]  # parsed client body
    raw: bytes  # original bytes (forwarded untouched in passthrough when nothing changed)
    stream: bool
    client: ClientIdentity
    headers: Mapping[str, str]  # client request headers (forwarding and `$Header` copies)
    endpoint: str  # e.g. "/v1/chat/completions", for usage records
    action: str = "generate"  # or "count_tokens"
    request_id: str = ""  # the front door's X-Request-Id, so usage records match the logs
    client_ip: str = ""  # the socket peer, for usage records


class DispatchError(Exception):
    """A final answer that is an error, already shaped in the client's dialect."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def of(
        cls,
        dialect: Dialect,
        status: int,
        message: str,
        *,
        err_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> DispatchError:
        return cls(status, error_body(dialect, status, message, err_type=err_type, code=code, param=param), headers)


@dataclass(slots=True)
class Outcome:
    """The committed result: the first upstream byte (or the whole body) is known."""

    status: int
    headers: dict[str, str]
    content_type: str
    body: bytes | None  # non-stream: the whole client-dialect body
    events: AsyncIterator[bytes] | None  # stream: client-dialect SSE bytes, as they arrive
    credential_id: str
    upstream_model: str
    _close: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        """Release the upstream (and record usage) if the stream was not read to its end."""
        if self._close is not None:
            close, self._close = self._close, None
            await close()


def payload_rules(state: RoutingState, config: Any) -> PayloadRules:
    """The compiled `payload:` rules of this config, compiled once per snapshot."""
    cached = state.derived.get("payload")
    if cached is None or cached[0] is not config:
        try:
            rules = PayloadRules.from_config(config.payload)
        except ValueError as exc:
            log.error("payload rules ignored: %s", exc)
            rules = PayloadRules()
        cached = state.derived["payload"] = (config, rules)
    result: PayloadRules = cached[1]
    return result


# -- model rewriting in passthrough ------------------------------------------------------------------


def replace_model(raw: bytes, body: dict[str, Any], old: str, new: str) -> bytes:
    """Swap the top-level `"model"` value: a byte replace when unambiguous, else a re-dump."""
    if raw.count(b'"model"') == 1:
        old_json, new_json = jsonio.dumps(old), jsonio.dumps(new)
        pattern = re.compile(rb'("model"\s*:\s*)' + re.escape(old_json))
        replaced, count = pattern.subn(lambda m: m.group(1) + new_json, raw, count=2)
        if count == 1:
            return replaced
    copy = dict(body)
    copy["model"] = new
    return jsonio.dumps(copy)


# -- the recorder ------------------------------------------------------------------------------------


class _Recorder:
    """Collects what one request's usage record needs; `done()` writes it exactly once."""

    __slots__ = (
        "alias",
        "attempts",
        "auth_index",
        "call",
        "cred_id",
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
        self.written = False
        self.release: Callable[[], None] | None = None

    def attempt(self, cand: Candidate, upstream_model: str) -> None:
        cred = cand.credential
        self.attempts += 1
        self.cred_id, self.auth_index, self.provider = cred.id, cred.auth_index, cred.provider
        self.upstream_model, self.upstream_dialect = upstream_model, _DIALECT_NAME[cred.executor.dialect]
        self.upstream = cred.executor.dialect

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
            )
        )


def reasoning_effort(body: dict[str, Any]) -> str:
    """The effort a client asked for (chat `reasoning_effort`, Responses `reasoning.effort`), or ''."""
    effort = body.get("reasoning_effort")
    if effort is None:
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else ""


def _scan_usage(dialect: Dialect, data: bytes, rec: _Recorder) -> None:
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


class _UsageScanner:
    """Follows a passthrough stream chunk by chunk, parsing only the events that mention usage."""

    __slots__ = ("dialect", "rec", "tail")

    def __init__(self, dialect: Dialect, rec: _Recorder) -> None:
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
            self.tail = data if len(data) < 1 << 20 else b""
            return
        rest = data[cut + 2 :]
        self.tail = rest if b"usage" in rest else b""
        _scan_usage(self.dialect, data[:cut], self.rec)

    def finish(self) -> None:
        if self.tail:
            _scan_usage(self.dialect, self.tail, self.rec)
            self.tail = b""


# -- one attempt -------------------------------------------------------------------------------------


class _Attempt:
    """Everything shared by the attempts of one request."""

    __slots__ = ("call", "config", "rec", "route", "sessions", "state", "suffix")

    def __init__(
        self,
        runtime: Runtime,
        call: Call,
        route: Route,
        suffix: str,
        state: RoutingState,
        sessions: Sessions,
        rec: _Recorder,
    ) -> None:
        self.call = call
        self.route = route
        self.suffix = suffix
        self.state = state
        self.sessions = sessions
        self.rec = rec
        self.config = runtime.config

    def cool(self, cand: Candidate, failure: Failure) -> None:
        """Apply the cooldown for a failed credential (unless cooling is disabled for it)."""
        own = cand.credential.disable_cooling
        if self.config.disable_cooling if own is None else own:
            return
        self.state.failure(
            cand.credential.id,
            cand.model_key,
            failure.status,
            retry_after=failure.retry_after,
            transient_seconds=self.config.transient_error_cooldown_seconds,
            not_found=failure.not_found,
        )

    def _headers(self, cand: Candidate) -> Mapping[str, str]:
        cred = cand.credential
        executor = cred.executor
        if not executor.forward_headers and not cred.header_copies:
            return cred.headers
        headers = dict(cred.headers)
        client_headers = self.call.headers
        for name in executor.forward_headers:
            value = client_headers.get(name)
            if value and name not in cred.pinned_headers:  # configured headers win
                headers[name] = value
        for upstream_name, client_name in cred.header_copies:
            value = client_headers.get(client_name)
            if value:
                headers[upstream_name] = value
        return headers

    async def send(self, cand: Candidate, upstream_model: str) -> Outcome | Failure:
        call = self.call
        cred = cand.credential
        executor = cred.executor
        upstream = executor.dialect
        self.rec.attempt(cand, upstream_model)
        passthrough = upstream is call.dialect
        up_stream = call.stream or (executor.always_stream and call.action == "generate")
        if call.action == "count_tokens" and not (passthrough and upstream in COUNTING_DIALECTS):
            return await self.estimate(cand, upstream_model)
        url_model = upstream_model
        body: dict[str, Any] | None = None
        payload: bytes | None = None
        if passthrough:
            if upstream_model[-1:] == ")" and "(" in upstream_model:  # thinking suffix → body fields
                body, url_model = convert.apply_thinking_suffix(jsonio.loads(call.raw), upstream, model=upstream_model)
            elif upstream is Dialect.GEMINI or upstream_model == call.model:
                payload = call.raw
            else:
                payload = replace_model(call.raw, call.body, call.model, upstream_model)
            if up_stream and not call.stream:  # an always-streaming upstream
                body = body if body is not None else jsonio.loads(payload or call.raw)
                body["stream"] = True
        else:
            try:
                body = convert.translate_request(
                    call.body, call.dialect, upstream, model=upstream_model, stream=up_stream
                )
            except convert.TranslationError as exc:
                return Failure(400, b"", call.dialect, fault=True, message=str(exc))
            url_model = convert.split_thinking_suffix(upstream_model)[0]
        if self.config.payload:
            rules = payload_rules(self.state, self.config)
            if rules:
                if body is None:
                    body = jsonio.loads(payload or call.raw)
                body = convert.apply_payload_rules(
                    body,
                    rules,
                    models=[url_model, call.model],
                    protocol=PROTOCOL[upstream],
                    from_protocol=FROM_PROTOCOL[call.dialect],
                    original=call.body,
                    headers=call.headers,
                )
        if executor.rewrites_body and call.action == "generate":  # e.g. the ChatGPT Codex backend
            parsed = body if body is not None else jsonio.loads(payload or call.raw)
            if executor.prepare_body(parsed):
                body = parsed
        if body is not None:
            payload = jsonio.dumps(body)
        assert payload is not None
        translated = not passthrough

        headers = self._headers(cand)
        url = executor.url(cred, url_model, stream=up_stream, action=call.action)
        poster, proxy = self.sessions.poster_for(cred.proxy_url, url)
        refreshed = False
        while True:
            if executor.dynamic_auth:
                try:
                    auth = await executor.fresh_auth(cred, force_refresh=refreshed)
                except Exception as exc:  # refresh/mint failed: this credential cannot be used now
                    log.warning("upstream %s: no usable token: %s", cred.id, exc)
                    return Failure(
                        401 if refreshed else 503, b"", call.dialect, message=f"credential unavailable: {exc}"
                    )
                headers = executor.combine_headers(headers, auth)
            try:
                resp: UpstreamResponse = await poster.post(
                    url, data=payload, headers=headers, proxy=proxy, allow_redirects=False
                )
            except NETWORK_ERRORS as exc:
                log.warning("upstream %s unreachable: %s", cred.id, type(exc).__name__)
                return Failure(502, b"", call.dialect, message=f"upstream request failed: {type(exc).__name__}")
            status = resp.status
            if status < 300:
                break
            try:
                data = await resp.read()
            except NETWORK_ERRORS:
                data = b""
            finally:
                resp.release()
            if status == 401 and not refreshed and executor.can_refresh(cred):
                refreshed = True
                continue
            if status < 400:  # redirects are not followed: the key must not travel to another address
                where = resp.headers.get("Location", "nowhere")
                message = f"upstream redirected ({status}) to {where}; check the base-url of {cred.id}"
                return Failure(502, b"", call.dialect, message=message)
            return classify(status, data, resp.headers, upstream)

        if not up_stream:  # the whole body, inline: this is the hot path
            try:
                data = await resp.read()
            except NETWORK_ERRORS as exc:
                resp.close()
                return Failure(502, b"", call.dialect, message=f"upstream body failed: {type(exc).__name__}")
            except BaseException:
                resp.close()
                raise
            resp.release()
            return self.whole(resp, data, cand, upstream, upstream_model, translated)
        try:
            if call.stream:
                return await self._stream(resp, cand, upstream, upstream_model, translated)
            return await self._aggregate(resp, cand, upstream, upstream_model, translated)
        except BaseException:
            resp.close()
            raise

    async def estimate(self, cand: Candidate, model: str) -> Outcome:
        """count_tokens where the upstream cannot count for this client's dialect: a local estimate.

        In a worker thread: the first estimate imports litellm (seconds), and tokenising a long prompt
        is CPU work that must not stall the other requests on the loop.
        """
        call = self.call
        try:
            total = await asyncio.to_thread(count_tokens_estimate, call.body, call.dialect, model=model)
        except Exception:  # an unreadable body or a tokenizer failure: a rough estimate beats a 500
            log.warning("token estimate failed for %s; using the body length", model, exc_info=True)
            total = max(1, len(call.raw) // 4)
        body = {"totalTokens": total} if call.dialect is Dialect.GEMINI else {"input_tokens": total}
        self.rec.first_byte()
        return Outcome(200, _EMPTY_HEADERS, JSON_CT, jsonio.dumps(body), None, cand.credential.id, model)

    def whole(
        self,
        resp: UpstreamResponse,
        data: bytes,
        cand: Candidate,
        upstream: Dialect,
        model: str,
        translated: bool,
    ) -> Outcome:
        rec = self.rec
        rec.first_byte()
        content_type = resp.headers.get(_CONTENT_TYPE, JSON_CT)
        call = self.call
        if not translated:  # passthrough: only the usage object is needed, not the whole answer
            if call.action == "generate":
                rec.add_tokens(usage_in_answer(upstream, data))
            return Outcome(resp.status, _EMPTY_HEADERS, content_type, data, None, cand.credential.id, model)
        try:
            parsed = jsonio.loads(data)
        except ValueError:
            parsed = None
        if call.action == "generate":
            rec.add_tokens(usage_of_body(upstream, parsed))
        if translated:
            try:
                if not isinstance(parsed, dict):  # never hand another dialect's (or no) JSON to the client
                    raise convert.TranslationError(f"not a JSON object ({content_type})")
                data = jsonio.dumps(convert.translate_response(parsed, upstream, call.dialect, model=call.model))
            except convert.TranslationError as exc:
                data = error_body(call.dialect, 502, f"upstream answer could not be translated: {exc}")
                return Outcome(502, _EMPTY_HEADERS, JSON_CT, data, None, cand.credential.id, model)
            content_type = JSON_CT
        return Outcome(resp.status, _EMPTY_HEADERS, content_type, data, None, cand.credential.id, model)

    async def _first(self, resp: UpstreamResponse, upstream: Dialect) -> bytes | Failure:
        """Read ahead to the first chunk with an SSE payload; an early error event is a failure."""
        buf = b""
        read = resp.content.readany
        try:
            while True:
                chunk = await read()
                if not chunk:
                    if b"data:" not in buf:
                        message = "upstream closed the stream before any data"
                        return Failure(502, b"", self.call.dialect, message=message)
                    break
                buf += chunk
                start = buf.find(b"data:")
                if start >= 0 and buf.find(b"\n", start) >= 0:
                    break
        except NETWORK_ERRORS as exc:
            return Failure(502, b"", self.call.dialect, message=f"upstream stream failed: {type(exc).__name__}")
        early = _early_error(buf)
        if early is not None:
            status, body, message = early
            return Failure(status, body, upstream, message=message)
        return buf

    async def _stream(
        self, resp: UpstreamResponse, cand: Candidate, upstream: Dialect, model: str, translated: bool
    ) -> Outcome | Failure:
        first = await self._first(resp, upstream)
        if isinstance(first, Failure):
            resp.close()
            return first
        rec = self.rec
        rec.first_byte()
        client = self.call.dialect
        events: AsyncIterator[bytes]
        if not translated:
            events = passthrough = PassthroughStream(resp, first, client, rec)
            close = passthrough.aclose
        else:
            translator = convert.StreamTranslator(upstream, client, model=self.call.model)
            events = translated_events = _translate_stream(resp, first, upstream, client, translator, rec)
            close = translated_events.aclose
        return Outcome(200, dict(SSE_HEADERS), SSE_CT, None, events, cand.credential.id, model, close)

    async def _aggregate(
        self, resp: UpstreamResponse, cand: Candidate, upstream: Dialect, model: str, translated: bool
    ) -> Outcome | Failure:
        """An always-streaming upstream answering a non-stream client: collect, then answer once."""
        first = await self._first(resp, upstream)
        if isinstance(first, Failure):
            resp.close()
            return first
        self.rec.first_byte()
        aggregator = convert.StreamAggregator(upstream, model=self.call.model)
        parser = SSEParser()
        scanner = _UsageScanner(upstream, self.rec)
        try:
            for ev in parser.feed(first):
                aggregator.feed(ev)
            scanner.feed(first)
            async for chunk in resp.content.iter_any():
                scanner.feed(chunk)
                for ev in parser.feed(chunk):
                    aggregator.feed(ev)
            for ev in parser.flush():
                aggregator.feed(ev)
        except NETWORK_ERRORS as exc:
            return Failure(502, b"", self.call.dialect, message=f"upstream stream failed: {type(exc).__name__}")
        finally:
            resp.release()
        scanner.finish()
        result = aggregator.result()
        if translated:
            try:
                result = convert.translate_response(result, upstream, self.call.dialect, model=self.call.model)
            except convert.TranslationError as exc:
                return Failure(502, b"", self.call.dialect, message=f"upstream answer could not be translated: {exc}")
        return Outcome(200, {}, JSON_CT, jsonio.dumps(result), None, cand.credential.id, model)


def _early_error(buf: bytes) -> tuple[int, bytes, str] | None:
    """An error event as the very first payload of a stream (still safe to fail over)."""
    head = buf.lstrip()
    if head.startswith(b"event: error") or head.startswith(b"event:error"):
        start = head.find(b"data:")
        end = head.find(b"\n", start)
        data = head[start + 5 : end if end > 0 else None].strip()
        return status_of_stream_error(Dialect.CLAUDE, data)
    if head.startswith(b'data: {"error"') or head.startswith(b'data:{"error"'):
        end = head.find(b"\n")
        return status_of_stream_error(Dialect.CHAT, head[5 : end if end > 0 else None].strip())
    return None


class PassthroughStream:
    """Passthrough: upstream bytes as they arrive, usage scanned on the side.

    `pump(write)` hands every chunk straight to the client's writer, with no generator between the
    two sockets (the hot path of `respond.stream_outcome`). Iterating the object yields the same
    bytes for wrappers that reshape them. Either way the upstream is released and the usage record
    written exactly once: at the end of the stream, or by `aclose()` when the client went away.
    """

    __slots__ = ("_chunks", "client", "complete", "finished", "first", "rec", "resp", "scanner")

    def __init__(self, resp: UpstreamResponse, first: bytes, client: Dialect, rec: _Recorder) -> None:
        self.resp = resp
        self.first = first
        self.client = client
        self.rec = rec
        self.scanner = _UsageScanner(client, rec)
        self.complete = False  # the upstream body was read to its end (the connection can be reused)
        self.finished = False
        self._chunks: AsyncGenerator[bytes, None] | None = None

    def _needs_done(self, last: bytes) -> bool:
        """Chat streams end with `data: [DONE]`; add it when the upstream left it out."""
        return self.client is Dialect.CHAT and not last.rstrip().endswith(b"[DONE]") and b'"error"' not in last

    def _broken(self, exc: BaseException) -> bytes:
        return stream_error_frame(self.client, 502, f"upstream stream broke: {type(exc).__name__}")

    def _finish(self, status: int) -> None:
        if self.finished:
            return
        self.finished = True
        if self.complete:
            self.resp.release()
        else:
            self.resp.close()
        self.scanner.finish()
        self.rec.done(status)

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the whole stream with `write`; a failed write (client gone) or a cancel counts as 499."""
        scanner = self.scanner
        reader = self.resp.content
        status = 499
        try:
            last = self.first
            scanner.feed(last)
            await write(last)
            while True:
                try:
                    chunk = await reader.readany()
                except NETWORK_ERRORS as exc:  # only upstream reads here: client write errors are not caught
                    await write(self._broken(exc))
                    status = 502
                    return
                if not chunk:
                    break
                scanner.feed(chunk)
                last = chunk
                await write(chunk)
            self.complete = True
            if self._needs_done(last):
                await write(DONE_FRAME)
            status = 200
        finally:
            self._finish(status)

    def __aiter__(self) -> PassthroughStream:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            self._chunks = self._iterate()
        return await self._chunks.__anext__()

    async def _iterate(self) -> AsyncGenerator[bytes, None]:
        status = 200
        last = self.first
        try:
            self.scanner.feed(last)
            yield last
            async for chunk in self.resp.content.iter_any():
                self.scanner.feed(chunk)
                last = chunk
                yield chunk
            self.complete = True
            if self._needs_done(last):
                yield DONE_FRAME
        except NETWORK_ERRORS as exc:
            status = 502
            yield self._broken(exc)
        except (asyncio.CancelledError, GeneratorExit):
            status = 499
            raise
        finally:
            self._finish(status)

    async def aclose(self) -> None:
        """Release the upstream and record usage if the stream was not read to its end (client gone)."""
        if self._chunks is not None:
            await self._chunks.aclose()
        self._finish(499)


async def _translate_stream(
    resp: UpstreamResponse, first: bytes, upstream: Dialect, client: Dialect, translator: Any, rec: _Recorder
) -> AsyncGenerator[bytes, None]:
    """Cross-dialect: parse upstream events, translate each, frame for the client."""
    parser = SSEParser()
    status = 200
    complete = False

    def convert(events: list[SSEEvent]) -> bytes:
        out = []
        for ev in events:
            if b"usage" in ev.data:
                try:
                    rec.add_tokens(usage_of_event(upstream, jsonio.loads(ev.data)))
                except ValueError:
                    pass
            piece = translator.feed(ev)
            if piece:
                out.append(piece)
        return b"".join(out)

    try:
        data = convert(parser.feed(first))
        if data:
            yield data
        async for chunk in resp.content.iter_any():
            data = convert(parser.feed(chunk))
            if data:
                yield data
        data = convert(parser.flush()) + translator.finish()
        complete = True
        if data:
            yield data
    except NETWORK_ERRORS as exc:
        status = 502
        yield translator.error(502, f"upstream stream broke: {type(exc).__name__}")
    except (asyncio.CancelledError, GeneratorExit):
        status = 499
        raise
    finally:
        if complete:
            resp.release()
        else:
            resp.close()
        rec.done(status)


# -- the loop ----------------------------------------------------------------------------------------


def _cooldown_error(dialect: Dialect, route: Route, wait: float) -> DispatchError:
    seconds = max(1, int(wait + 0.999))
    provider = route.providers[0] if route.providers else ""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    reset = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or hours else "") + f"{secs}s"
    message = f"All credentials for model {route.model} are cooling down via provider {provider}"
    if dialect in (Dialect.CHAT, Dialect.RESPONSES):
        body = jsonio.dumps(
            {
                "error": {
                    "code": "model_cooldown",
                    "message": message,
                    "model": route.model,
                    "reset_time": reset,
                    "reset_seconds": seconds,
                    "provider": provider,
                    "type": "rate_limit_error",
                }
            }
        )
    else:
        body = error_body(dialect, 429, message, err_type="rate_limit_error" if dialect is Dialect.CLAUDE else None)
    return DispatchError(429, body, {"Retry-After": str(seconds)})


def _no_credentials(dialect: Dialect, route: Route) -> DispatchError:
    providers = ",".join(route.providers)
    message = f"auth_not_found: no auth available (providers={providers}, model={route.model})"
    if "claude" in route.providers:
        message += "; check Claude auth/key session and cooldown state via /v0/management/auth-files"
    return DispatchError.of(dialect, 503, message, err_type="server_error", code="internal_server_error")


def unknown_model(dialect: Dialect, model: str) -> DispatchError:
    return DispatchError.of(
        dialect, 400, f"unknown provider for model {model}", err_type=None, code="model_not_found", param="model"
    )


async def execute(app: web.Application, runtime: Runtime, call: Call) -> Outcome:
    """Route `call` to a credential and return the committed outcome; raises `DispatchError`.

    The attempt loop lives inline here (no extra coroutine frames: every await on the hot path
    resumes through each frame of the chain).
    """
    route, suffix = runtime.catalog.resolve(call.model)
    if route is None:
        if call.client.limited:  # out of scope is 403 whether the model exists or not
            try:
                check_scope(call.client, call.model)
            except PolicyRefusal as refusal:
                raise DispatchError.of(call.dialect, refusal.status, refusal.message, code=refusal.code) from None
        raise unknown_model(call.dialect, call.model)
    release = None
    if call.client.limited:  # per-key scopes, rates, allowances (keys engineer's `policy.admit`)
        policy_state = app.get(POLICY)
        if policy_state is not None:
            try:
                release = await admit(
                    policy_state,
                    call.client,
                    route.model,  # the canonical id: a thinking suffix does not leave the key's scope
                    lambda: [name for c in route.candidates for name in c.offer.upstream],
                    action=call.action,
                )
            except PolicyRefusal as refusal:
                raise DispatchError.of(
                    call.dialect, refusal.status, refusal.message, code=refusal.code, headers=refusal.headers
                ) from None
    store = app[USAGE]
    rec = _Recorder(store, call)
    rec.release = release
    state = app[ROUTING]
    attempt = _Attempt(runtime, call, route, suffix, state, app[SESSIONS], rec)
    config = runtime.config
    strategy = config.routing.strategy
    max_credentials = config.max_retry_credentials
    tried: set[str] = set()
    last: Failure | None = None
    attempted = 0
    round_no = 0
    try:
        while True:
            while True:
                cand = state.pick(route, strategy, tried)
                if cand is None:
                    break
                tried.add(cand.credential.id)
                if round_no == 0 and max_credentials > 0 and attempted >= max_credentials:
                    break
                attempted += 1
                names = cand.offer.upstream
                for index in range(len(names)):  # alias pool: next name on the same credential
                    name = names[0] if index == 0 and len(names) == 1 else state.pool_name(cand, index)
                    result = await attempt.send(cand, name + suffix if suffix else name)
                    if type(result) is Outcome:
                        if state.cooldowns:
                            state.success(cand.credential.id, cand.model_key)
                        if result.events is None:
                            rec.done(result.status)
                        return result
                    assert isinstance(result, Failure)
                    last = result
                    rules = cand.credential.scoped_errors
                    if (rules and apply_scoped_rules(rules, result)) or result.fault or result.status == 501:
                        break
                assert last is not None
                if last.cooldown or (last.cooldown is None and not last.fault and last.status != 501):
                    attempt.cool(cand, last)
                if last.fault:
                    status, body, headers = client_error(last, call.dialect)
                    raise DispatchError(status, body, headers)
            if last is None:
                wait = state.earliest(route.candidates)
                if wait > 0:
                    raise _cooldown_error(call.dialect, route, wait)
                raise _no_credentials(call.dialect, route)
            next_round = round_no + 1
            bootstrap = config.streaming.bootstrap_retries if call.stream else 0
            eligible = [c for c in route.candidates if _retries(config, c) + bootstrap >= next_round]
            if not eligible or not (
                last.status in RETRY_ROUND_STATUSES or (bootstrap > 0 and last.status in BOOTSTRAP_STATUSES)
            ):
                break
            wait = state.earliest(eligible)
            if wait > 0 and wait > config.max_retry_interval:
                break
            if wait > 0:
                await asyncio.sleep(wait)
            round_no = next_round
            eligible_ids = {c.credential.id for c in eligible}
            tried = {c.credential.id for c in route.candidates if c.credential.id not in eligible_ids}
        status, body, headers = client_error(last, call.dialect)
        raise DispatchError(status, body, headers)
    except DispatchError as exc:
        rec.done(exc.status)
        raise
    except asyncio.CancelledError:
        rec.done(499)
        raise
    except Exception:  # a bug must not keep the key's concurrency slot or lose the usage record
        rec.done(500)
        raise


def _retries(config: Any, cand: Candidate) -> int:
    """Effective `request-retry`: the credential's own value wins over the global one."""
    own = cand.credential.request_retry
    return int(config.request_retry) if own is None else own


def install(app: web.Application) -> None:
    """`FEATURES` hook: upstream sessions, routing state and the usage store on the app.

    Tests may replace `app[ROUTING]` (e.g. with an injected clock) before the app starts.
    """
    app[ROUTING] = RoutingState()
    app[USAGE] = UsageStore()
    app[SESSIONS] = Sessions()

    async def close_sessions(app: web.Application) -> None:
        await app[SESSIONS].close()

    app.on_cleanup.append(close_sessions)
