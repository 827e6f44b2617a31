"""One attempt: send the call to one credential and return the committed `Outcome`, or a `Failure`.

Commit late: a non-stream answer is read whole, a stream is read ahead to its first payload, so any
failure before that is a `Failure` the retry loop can move past without the client noticing. A 401
from a credential that can refresh its token refreshes once and retries the same credential.
Redirects are reported, never followed: the credential must not travel to another address.
"""

from __future__ import annotations

import asyncio
import logging

from multidict import istr

from cliproxy import jsonio
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.catalog import Candidate
from cliproxy.routing.failures import Failure, classify
from cliproxy.routing.recorder import UsageRecorder
from cliproxy.routing.relay import NETWORK_ERRORS, PassthroughStream, collect_stream, read_first, translated_stream
from cliproxy.routing.request_body import build_body, upstream_headers
from cliproxy.runtime import Runtime
from cliproxy.translate import Dialect, convert
from cliproxy.translate.errors import error_body
from cliproxy.translate.tokens import count_tokens_estimate
from cliproxy.translate.usage import usage_in_answer, usage_of_body
from cliproxy.upstream.clients import Sessions, UpstreamResponse

log = logging.getLogger(__name__)

JSON_CT = "application/json"
SSE_CT = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
COUNTING_DIALECTS = frozenset({Dialect.CLAUDE, Dialect.GEMINI})  # upstreams with a count endpoint
_EMPTY_HEADERS: dict[str, str] = {}
_CONTENT_TYPE = istr("Content-Type")  # an `istr`: multidict looks it up without case-folding it each time


class Attempt:
    """Everything the attempts of one request share; `send` makes one attempt."""

    __slots__ = ("call", "rec", "runtime", "sessions")

    def __init__(self, runtime: Runtime, call: Call, sessions: Sessions, rec: UsageRecorder) -> None:
        self.runtime = runtime
        self.call = call
        self.sessions = sessions
        self.rec = rec

    async def send(self, cand: Candidate, upstream_model: str) -> Outcome | Failure:
        call = self.call
        cred = cand.credential
        executor = cred.executor
        upstream = executor.dialect
        self.rec.attempt(cand, upstream_model)
        translated = upstream is not call.dialect
        if call.action == "count_tokens" and (translated or upstream not in COUNTING_DIALECTS):
            return await self.estimate(cand, upstream_model)
        built = build_body(self.runtime, call, cred, upstream_model)
        if isinstance(built, Failure):
            return built
        headers = upstream_headers(call, cred)
        url = executor.url(cred, built.url_model, stream=built.stream, action=call.action)
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
                    url, data=built.payload, headers=headers, proxy=proxy, allow_redirects=False
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
            if status < 400:
                where = resp.headers.get("Location", "nowhere")
                message = f"upstream redirected ({status}) to {where}; check the base-url of {cred.id}"
                return Failure(502, b"", call.dialect, message=message)
            return classify(status, data, resp.headers, upstream)

        if not built.stream:  # the whole body, inline: this is the hot path
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
                return await self.stream(resp, cand, upstream, upstream_model, translated)
            return await self.collect(resp, cand, upstream, upstream_model, translated)
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
        self, resp: UpstreamResponse, data: bytes, cand: Candidate, upstream: Dialect, model: str, translated: bool
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
        try:
            if not isinstance(parsed, dict):  # never hand another dialect's (or no) JSON to the client
                raise convert.TranslationError(f"not a JSON object ({content_type})")
            data = jsonio.dumps(convert.translate_response(parsed, upstream, call.dialect, model=call.model))
        except convert.TranslationError as exc:
            data = error_body(call.dialect, 502, f"upstream answer could not be translated: {exc}")
            return Outcome(502, _EMPTY_HEADERS, JSON_CT, data, None, cand.credential.id, model)
        return Outcome(resp.status, _EMPTY_HEADERS, JSON_CT, data, None, cand.credential.id, model)

    async def stream(
        self, resp: UpstreamResponse, cand: Candidate, upstream: Dialect, model: str, translated: bool
    ) -> Outcome | Failure:
        client = self.call.dialect
        first = await read_first(resp, client, upstream)
        if isinstance(first, Failure):
            resp.close()
            return first
        rec = self.rec
        rec.first_byte()
        if not translated:
            passthrough = PassthroughStream(resp, first, client, rec)
            return Outcome(
                200, dict(SSE_HEADERS), SSE_CT, None, passthrough, cand.credential.id, model, passthrough.aclose
            )
        translator = convert.StreamTranslator(upstream, client, model=self.call.model)
        events = translated_stream(resp, first, upstream, translator, rec)
        return Outcome(200, dict(SSE_HEADERS), SSE_CT, None, events, cand.credential.id, model, events.aclose)

    async def collect(
        self, resp: UpstreamResponse, cand: Candidate, upstream: Dialect, model: str, translated: bool
    ) -> Outcome | Failure:
        """An always-streaming upstream answering a non-stream client: collect, then answer once."""
        call = self.call
        first = await read_first(resp, call.dialect, upstream)
        if isinstance(first, Failure):
            resp.close()
            return first
        self.rec.first_byte()
        result = await collect_stream(resp, first, call.dialect, upstream, call.model, self.rec)
        if isinstance(result, Failure):
            return result
        if translated:
            try:
                result = convert.translate_response(result, upstream, call.dialect, model=call.model)
            except convert.TranslationError as exc:
                return Failure(502, b"", call.dialect, message=f"upstream answer could not be translated: {exc}")
        return Outcome(200, {}, JSON_CT, jsonio.dumps(result), None, cand.credential.id, model)
