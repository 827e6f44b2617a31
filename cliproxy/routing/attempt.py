"""One attempt: send the call to one credential and return the committed `Outcome`, or a `Failure`.

Commit late: a non-stream answer is read whole and must be the dialect's JSON object, a stream must
be SSE and is read ahead to its first payload, so any failure before that (a refusal, a dropped
connection, a bound of `upstream-timeouts` run out, a 200 that is not an answer) is a `Failure` the
retry loop can move past without the client noticing. A 401 from a credential that can refresh its
token refreshes once and retries the same credential. Redirects are reported, never followed: the
credential must not travel to another address. What an upstream echoes of the credential it was
sent is masked before anyone sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from multidict import istr

from cliproxy import jsonio
from cliproxy.routing.answer_rewrite import forwarded_headers, remap_body, remapped_stream
from cliproxy.routing.call import Call, Outcome
from cliproxy.routing.catalog import Candidate
from cliproxy.routing.credentials import Credential
from cliproxy.routing.failures import Failure, classify, masked, network_failure
from cliproxy.routing.recorder import UsageRecorder
from cliproxy.routing.relay import NETWORK_ERRORS, PassthroughStream, collect_stream, read_first, translated_stream
from cliproxy.routing.request_body import UpstreamBody, build_body, upstream_headers
from cliproxy.runtime import Runtime
from cliproxy.translate import Dialect, convert
from cliproxy.translate.counting import COUNTING_DIALECTS, count_answer, count_request, counted_tokens
from cliproxy.translate.tokens import count_tokens_estimate
from cliproxy.translate.usage import WHOLE_PARSE_BELOW, usage_in_answer, usage_of_body
from cliproxy.upstream.base import RAW_ACTIONS, Outgoing
from cliproxy.upstream.clients import Sessions, Timeouts, UpstreamResponse

log = logging.getLogger(__name__)

JSON_CT = "application/json"
SSE_CT = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
_EMPTY_HEADERS: dict[str, str] = {}
_CONTENT_TYPE = istr("Content-Type")  # an `istr`: multidict looks it up without case-folding it each time
_LOCATION = istr("Location")


class Attempt:
    """Everything the attempts of one request share; `send` makes one attempt."""

    __slots__ = ("call", "names", "rec", "runtime", "secrets", "sessions")

    def __init__(self, runtime: Runtime, call: Call, sessions: Sessions, rec: UsageRecorder) -> None:
        self.runtime = runtime
        self.call = call
        self.sessions = sessions
        self.rec = rec
        self.secrets: tuple[str, ...] = ()  # what the last request carried of its credential
        self.names: Mapping[str, str] | None = None  # tool names shortened for the upstream → the client's

    async def send(self, cand: Candidate, upstream_model: str) -> Outcome | Failure:
        call = self.call
        cred = cand.credential
        upstream = cred.executor.dialect
        self.rec.attempt(cand, upstream_model)
        translated = upstream is not call.dialect and call.action not in RAW_ACTIONS
        if call.action == "count_tokens" and translated:
            return await self.count(cand, upstream_model)
        built = build_body(self.runtime, call, cred, upstream_model)
        if isinstance(built, Failure):
            return built
        self.names = built.tool_names
        timeouts = cred.timeouts or self.runtime.upstream_timeouts
        loop = asyncio.get_running_loop()
        started = loop.time()
        resp = await self.exchange(cred, built, timeouts)
        if isinstance(resp, Failure):
            return resp
        if not built.stream:  # the whole body, inline: this is the hot path
            try:
                data = await resp.read()
            except NETWORK_ERRORS as exc:
                resp.close()
                return network_failure(call.dialect, "upstream body failed", exc)
            except BaseException:
                resp.close()
                raise
            resp.release()
            return self.whole(resp, data, cand, upstream, upstream_model, translated)
        content_type = resp.headers.get(_CONTENT_TYPE, "")
        if not content_type.lower().startswith(SSE_CT):
            resp.close()
            message = f"upstream answered a stream with {content_type or 'no content type'}, not {SSE_CT}"
            return Failure(502, b"", call.dialect, message=message)
        deadline = started + timeouts.first_byte  # a stream's first event counts as its first byte
        try:
            if call.stream:
                return await self.stream(resp, cand, upstream, upstream_model, translated, deadline)
            return await self.collect(resp, cand, upstream, upstream_model, translated, deadline)
        except BaseException:
            resp.close()
            raise

    async def exchange(self, cred: Credential, built: UpstreamBody, timeouts: Timeouts) -> UpstreamResponse | Failure:
        """POST the body and wait for a 2xx head; a refusal, redirect or network failure is a `Failure`."""
        call = self.call
        executor = cred.executor
        headers = built.headers if built.headers is not None else upstream_headers(call, cred)
        if built.content_type is not None:
            headers = {**headers, "Content-Type": built.content_type}
        url = executor.url(cred, built.url_model, stream=built.stream, action=call.action)
        transport = executor.transport
        poster = None if transport else self.sessions.poster_for(cred.proxy_url, url)
        self.secrets = sent_secrets(cred.api_key, {})
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
                self.secrets = sent_secrets(cred.api_key, auth)
            try:
                if poster is not None:
                    resp = await poster.post(url, data=built.payload, headers=headers, timeouts=timeouts)
                else:  # an executor that delivers its requests itself (an envelope, a relay)
                    out = Outgoing(url, built.url_model, built.stream, call.action, built.payload, headers, timeouts,
                                   cred.proxy_url)  # fmt: skip
                    resp = await executor.send(cred, out, self.sessions)
            except NETWORK_ERRORS as exc:
                log.warning("upstream %s unreachable: %s", cred.id, type(exc).__name__)
                return network_failure(call.dialect, "upstream request failed", exc)
            except (ValueError, TypeError) as exc:  # the client refused the request itself (a config clash)
                log.warning("upstream %s: request not sent: %s", cred.id, exc)
                return Failure(502, b"", call.dialect, message=f"upstream request could not be sent: {exc}")
            status = resp.status
            if status < 300:
                return resp
            try:
                data = await resp.read()
            except NETWORK_ERRORS:
                data = b""
            finally:
                resp.release()
            status = executor.upstream_status(status, data)
            if status == 401 and not refreshed and executor.can_refresh(cred):
                refreshed = True
                continue
            if status < 400:
                where = resp.headers.get(_LOCATION, "nowhere")
                message = f"upstream redirected ({status}) to {where}; check the base-url of {cred.id}"
                return Failure(502, b"", call.dialect, message=message)
            return masked(classify(status, data, resp.headers, executor.dialect), self.secrets)

    async def count(self, cand: Candidate, model: str) -> Outcome | Failure:
        """count_tokens for an upstream of another dialect: its own counting endpoint when it has one
        (Claude ↔ Gemini), else a local estimate."""
        call = self.call
        cred = cand.credential
        upstream = cred.executor.dialect
        if upstream not in COUNTING_DIALECTS:
            return await self.estimate(cand, model)
        url_model = convert.split_thinking_suffix(model)[0]
        try:
            body = count_request(call.body, call.dialect, upstream, model=url_model)
        except convert.TranslationError as exc:
            return Failure(400, b"", call.dialect, fault=True, message=str(exc))
        timeouts = cred.timeouts or self.runtime.upstream_timeouts
        resp = await self.exchange(cred, UpstreamBody(jsonio.dumps(body), url_model, False), timeouts)
        if isinstance(resp, Failure):
            return resp
        try:
            data = await resp.read()
        except NETWORK_ERRORS as exc:
            resp.close()
            return network_failure(call.dialect, "upstream body failed", exc)
        resp.release()
        try:
            total = counted_tokens(jsonio.loads(data), upstream)
        except ValueError:
            total = None
        if total is None:
            return Failure(502, b"", call.dialect, message="upstream count answer has no token count")
        self.rec.first_byte()
        return Outcome(
            200, _EMPTY_HEADERS, JSON_CT, jsonio.dumps(count_answer(total, call.dialect)), None, cred.id, model
        )

    async def estimate(self, cand: Candidate, model: str) -> Outcome:
        """count_tokens where the upstream cannot count: a local estimate.

        In a worker thread: the first estimate imports litellm (seconds), and tokenising a long prompt
        is CPU work that must not stall the other requests on the loop.
        """
        call = self.call
        try:
            total = await asyncio.to_thread(count_tokens_estimate, call.body, call.dialect, model=model)
        except Exception:  # an unreadable body or a tokenizer failure: a rough estimate beats a 500
            log.warning("token estimate failed for %s; using the body length", model, exc_info=True)
            total = max(1, len(call.raw) // 4)
        self.rec.first_byte()
        body = jsonio.dumps(count_answer(total, call.dialect))
        return Outcome(200, _EMPTY_HEADERS, JSON_CT, body, None, cand.credential.id, model)

    def whole(
        self, resp: UpstreamResponse, data: bytes, cand: Candidate, upstream: Dialect, model: str, translated: bool
    ) -> Outcome | Failure:
        """A whole answer: it must be a JSON object (an HTML challenge page or a cut-off body is a
        failure, never a 200 for the client). A same-dialect answer under `WHOLE_PARSE_BELOW` bytes is
        parsed once for both the check and the usage; a longer one must open and close as an object and
        only its usage object is parsed, since a cut connection is already an error of the framing."""
        rec = self.rec
        call = self.call
        content_type = resp.headers.get(_CONTENT_TYPE, JSON_CT)
        generate = call.action == "generate"
        parsed = None
        if translated or len(data) < WHOLE_PARSE_BELOW:
            try:
                parsed = jsonio.loads(data)
            except ValueError:
                parsed = None
            ok = isinstance(parsed, dict)
        else:
            body = data.strip()
            ok = body[:1] == b"{" and body[-1:] == b"}"
        if not ok:
            kind = content_type.split(";", 1)[0] or "no content type"
            what = "upstream answer could not be translated: it is" if translated else "upstream answered with"
            message = f"{what} a body that is not a JSON object ({kind})"
            return Failure(502, b"", call.dialect, message=message)
        rec.first_byte()
        if not translated:  # passthrough: the bytes go out as they came
            if generate:
                usage = usage_of_body(upstream, parsed) if parsed is not None else usage_in_answer(upstream, data)
                rec.add_tokens(usage)
            if cand.offer.force_mapping:
                data = remap_body(data, call.model)
            outcome = Outcome(resp.status, _EMPTY_HEADERS, content_type, data, None, cand.credential.id, model)
            if self.runtime.config.passthrough_headers:
                outcome.upstream_headers = forwarded_headers(resp.headers)
            return outcome
        assert isinstance(parsed, dict)
        if generate:
            rec.add_tokens(usage_of_body(upstream, parsed))
        try:
            answer = convert.translate_response(parsed, upstream, call.dialect, model=call.model, names=self.names)
            data = jsonio.dumps(answer)
        except convert.TranslationError as exc:
            return Failure(502, b"", call.dialect, message=f"upstream answer could not be translated: {exc}")
        outcome = Outcome(resp.status, _EMPTY_HEADERS, JSON_CT, data, None, cand.credential.id, model)
        if self.runtime.config.passthrough_headers:
            outcome.upstream_headers = forwarded_headers(resp.headers)
        return outcome

    async def stream(
        self,
        resp: UpstreamResponse,
        cand: Candidate,
        upstream: Dialect,
        model: str,
        translated: bool,
        deadline: float,
    ) -> Outcome | Failure:
        client = self.call.dialect
        first = await read_first(resp, client, upstream, deadline)
        if isinstance(first, Failure):
            resp.close()
            return masked(first, self.secrets)
        rec = self.rec
        rec.first_byte()
        if not translated:
            passthrough = PassthroughStream(resp, first, client, rec)
            outcome = Outcome(
                200, dict(SSE_HEADERS), SSE_CT, None, passthrough, cand.credential.id, model, passthrough.aclose
            )
            if cand.offer.force_mapping:
                outcome.wrap_events(remapped_stream(passthrough, self.call.model), passthrough.aclose)
        else:
            translator = convert.StreamTranslator(upstream, client, model=self.call.model, names=self.names)
            events = translated_stream(resp, first, upstream, translator, rec)
            outcome = Outcome(200, dict(SSE_HEADERS), SSE_CT, None, events, cand.credential.id, model, events.aclose)
        if self.runtime.config.passthrough_headers:
            outcome.upstream_headers = forwarded_headers(resp.headers)
        return outcome

    async def collect(
        self,
        resp: UpstreamResponse,
        cand: Candidate,
        upstream: Dialect,
        model: str,
        translated: bool,
        deadline: float,
    ) -> Outcome | Failure:
        """An always-streaming upstream answering a non-stream client: collect, then answer once."""
        call = self.call
        first = await read_first(resp, call.dialect, upstream, deadline)
        if isinstance(first, Failure):
            resp.close()
            return masked(first, self.secrets)
        self.rec.first_byte()
        result = await collect_stream(resp, first, call.dialect, upstream, call.model, self.rec)
        if isinstance(result, Failure):
            return result
        if translated:
            try:
                result = convert.translate_response(result, upstream, call.dialect, model=call.model, names=self.names)
            except convert.TranslationError as exc:
                return Failure(502, b"", call.dialect, message=f"upstream answer could not be translated: {exc}")
        elif cand.offer.force_mapping:
            result = {**result, "model": call.model} if "model" in result else result
        outcome = Outcome(200, {}, JSON_CT, jsonio.dumps(result), None, cand.credential.id, model)
        if self.runtime.config.passthrough_headers:
            outcome.upstream_headers = forwarded_headers(resp.headers)
        return outcome


def sent_secrets(api_key: str, auth: Mapping[str, str]) -> tuple[str, ...]:
    """The credential values a request carried: the key, and the tokens of its auth headers."""
    found = [api_key] if api_key else []
    for value in auth.values():
        scheme, _, token = value.partition(" ")
        found.append(token if token and scheme.lower() in ("bearer", "basic") else value)
    return tuple(s for s in found if len(s) >= 8)
