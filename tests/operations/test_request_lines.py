"""One summary line per API request when it ends: JSON fields with `log-format: json` (a real
process, every line of its log parsed), `key=value` pairs otherwise; secrets stay masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cliproxy.logs import CliproxyHandler, JSONFormatter, Redactor, TextFormatter, log_lines
from cliproxy.server.request_ends import LINE_DELAY_SECONDS, logfmt, routed_fields, routed_line
from cliproxy.server.services import SERVICES
from cliproxy.usage import UsageRecord
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream
from tests.server.processes import free_port, spawn, stop, wait_healthy

NAMED = "sk-named-client-0123456789"
PLAIN = "sk-plain-client-0123456789"
UPSTREAM_KEYS = ("sk-upstream-secret-aaaa1111", "sk-upstream-secret-bbbb2222")
CHAT = "/v1/chat/completions"


def config(base: str, extra: str = "") -> str:
    entries = "".join(f"      - api-key: {key}\n" for key in UPSTREAM_KEYS)
    return (
        f"api-keys:\n  - name: ci-bot\n    key: {NAMED}\n  - {PLAIN}\n{extra}"
        f"openai-compatibility:\n  - name: fake\n    base-url: {base}/v1\n    api-key-entries:\n{entries}"
        "    models:\n      - name: gpt-fake\n"
    )


async def post(url: str, key: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    """(status, X-Request-Id, body) of one chat request."""
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.post(url + CHAT, json=body, headers=headers) as resp:
        return resp.status, resp.headers["X-Request-Id"], await resp.read()


def chat(stream: bool = False, model: str = "gpt-fake") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}


@pytest.mark.subprocess
async def test_json_logs_have_one_parsable_line_per_request(tmp_path: Path, upstream: tuple[FakeUpstream, str]) -> None:
    fake, base = upstream
    port = free_port()
    (tmp_path / "config.yaml").write_text(
        f"host: 127.0.0.1\nport: {port}\nauth-dir: ./auths\nlog-format: json\n" + config(base)
    )
    proc = spawn(["-m", "cliproxy", "--config", "config.yaml"], cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(proc, url + "/healthz")
        ok = await post(url, NAMED, chat())
        streamed = await post(url, PLAIN, chat(stream=True))
        fake.fail(503, times=1)
        failover = await post(url, NAMED, chat())
        fake.fail(400, times=1)
        fault = await post(url, NAMED, chat())
        refused = await post(url, "sk-wrong-client-key-000", chat())
        unknown = await post(url, NAMED, chat(model="no-such-model"))
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert [r[0] for r in (ok, streamed, failover, fault, refused, unknown)] == [200, 200, 200, 400, 401, 400]

    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    requests = {line["request_id"]: line for line in lines if line["logger"] == "cliproxy.requests"}
    assert len([line for line in lines if line["logger"] == "cliproxy.requests"]) == 6  # one per request

    first = requests[ok[1]]
    assert first["client_key"] == "ci-bot" and first["route"] == CHAT and first["dialect"] == "chat"
    assert first["model"] == "gpt-fake" and first["upstream_model"] == "gpt-fake"
    assert first["provider"] == "openai-compatible-fake" and first["credential"].startswith("openai-compatibility:")
    assert first["status"] == 200 and first["attempts"] == 1 and first["stream"] is False
    assert 0 < first["ttfb_ms"] <= first["duration_ms"]
    assert (first["input_tokens"], first["output_tokens"], first["cached_tokens"], first["reasoning_tokens"]) == (
        5,
        3,
        2,
        1,
    )
    assert f"request_id={ok[1]} client_key=ci-bot route={CHAT}" in first["message"]

    second = requests[streamed[1]]
    assert second["client_key"] == "sk-…6789" and second["stream"] is True and second["status"] == 200
    assert second["output_tokens"] > 0
    assert requests[failover[1]]["attempts"] == 2 and requests[failover[1]]["status"] == 200
    assert requests[fault[1]]["status"] == 400 and requests[fault[1]]["attempts"] == 1
    assert "ttfb_ms" not in requests[fault[1]] or requests[fault[1]]["ttfb_ms"] is None
    assert requests[refused[1]] == {
        **requests[refused[1]],
        "client_key": "",
        "route": CHAT,
        "dialect": "chat",
        "status": 401,
        "attempts": 0,
    }
    assert requests[unknown[1]]["client_key"] == "ci-bot" and requests[unknown[1]]["status"] == 400

    everything = out + err
    for secret in (NAMED, PLAIN, *UPSTREAM_KEYS):
        assert secret not in everything


async def test_text_lines_carry_the_same_fields(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    with caplog.at_level(logging.INFO, logger="cliproxy.requests"):
        before = time.time()
        status, request_id, _ = await post(proxy.url, NAMED, chat())
        after = time.time()
        assert not [r for r in caplog.records if r.name == "cliproxy.requests"]  # written in batches
        await asyncio.sleep(LINE_DELAY_SECONDS + 0.1)  # at most this late
    assert status == 200
    (record,) = [r for r in caplog.records if r.name == "cliproxy.requests"]
    assert before <= record.created <= after  # stamped with the time the request ended
    line = record.getMessage()
    assert line.startswith(f"request_id={request_id} client_key=ci-bot route={CHAT} dialect=chat model=gpt-fake ")
    for part in ("status=200", "attempts=1", "input_tokens=5", "output_tokens=3", "provider=openai-compatible-fake"):
        assert part in line.split(" ")
    assert "duration_ms=" in line and "ttfb_ms=" in line
    assert record.fields["request_id"] == request_id  # type: ignore[attr-defined]


def test_a_configured_secret_in_a_request_line_is_masked_in_its_fields_too() -> None:
    """A client may name a model after anything; the redactor masks the JSON fields as well."""
    redactor = Redactor()
    redactor.update({UPSTREAM_KEYS[0]})
    fields = {"request_id": "1a2b3c4d", "model": f"x-{UPSTREAM_KEYS[0]}", "status": 200}
    record = logging.getLogger("cliproxy.requests").makeRecord(
        "cliproxy.requests", logging.INFO, __file__, 1, "%s", (logfmt(fields),), None, extra={"fields": fields}
    )
    assert redactor.filter(record)
    line = json.loads(JSONFormatter().format(record))
    assert UPSTREAM_KEYS[0] not in json.dumps(line)
    assert line["model"] == "x-sk-…1111" and line["status"] == 200 and line["request_id"] == "1a2b3c4d"
    assert line["message"] == "request_id=1a2b3c4d model=x-sk-…1111 status=200"


def test_values_that_could_forge_a_line_are_quoted() -> None:
    line = logfmt({"model": 'gpt\nstatus=200 "x"', "route": "/v1/x", "empty": "", "gone": None, "stream": True})
    assert line == 'model="gpt\\nstatus=200 \\"x\\"" route=/v1/x empty="" stream=true'


async def test_log_requests_false_writes_no_lines_and_metrics_still_count(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, "log-requests: false\n"))
    with caplog.at_level(logging.INFO, logger="cliproxy.requests"):
        assert (await post(proxy.url, NAMED, chat()))[0] == 200
        assert (await post(proxy.url, "sk-wrong-client-key-000", chat()))[0] == 401
        proxy.server.app[SERVICES].request_ends.flush()
    assert [r for r in caplog.records if r.name == "cliproxy.requests"] == []
    metrics = proxy.server.app[SERVICES].metrics
    metrics.requests.fold()
    requests = metrics.families.requests.values
    assert sum(requests.values()) == 2


def usage(**changes: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "timestamp": time.time(),
        "request_id": "1a2b3c4d",
        "client_key": "ci-bot",
        "credential_id": "openai-compatibility:fake:0",
        "auth_index": "0",
        "provider": "openai-compatible-fake",
        "model": "gpt-fake",
        "alias": "gpt-fake",
        "client_dialect": "chat",
        "upstream_dialect": "chat",
        "endpoint": CHAT,
        "status": 200,
        "failed": False,
        "latency_ms": 12.345,
        "ttft_ms": 3.25,
        "input_tokens": 5,
        "output_tokens": 3,
    }
    return UsageRecord(**{**values, **changes})


def test_the_routed_line_is_logfmt_of_its_fields() -> None:
    """`routed_line` writes the usual line in one f-string: the same bytes as `logfmt(routed_fields(...))`."""
    rng = random.Random(7)
    records = [
        usage(),
        usage(ttft_ms=None, stream=True, status=502, attempts=3, cost_usd=0.5),
        usage(cost_usd=1.25e-05, cached_tokens=2, reasoning_tokens=1),
        usage(alias='gpt\nstatus=200 "x"', client_key=""),  # quoted, and an empty value
        usage(model="a model", request_id=""),
        usage(request_id="x y"),
        usage(request_id="é1"),
        *(
            usage(latency_ms=rng.uniform(0, 10.0 ** rng.randint(0, 12)), ttft_ms=rng.random() * 100)
            for _ in range(2000)
        ),
        *(usage(latency_ms=n / 20, ttft_ms=n / 100 + 0.05) for n in range(2000)),  # ties and near-ties
    ]
    seen: set[str] = set()  # the values known to need no quoting, shared by all the lines
    for record in [*records, *records]:
        assert routed_line(record, seen) == routed_line(record, set()) == logfmt(routed_fields(record))


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("worker", [None, 2])
@pytest.mark.parametrize("formatter", [TextFormatter, JSONFormatter])
def test_a_batch_of_lines_is_written_as_a_record_each_would_be(
    formatter: type[TextFormatter | JSONFormatter], worker: int | None
) -> None:
    """Our handler writes a batch without a `LogRecord` per line: the bytes are those of a record each
    (time, masking, quoting), and a handler that is not ours still gets the records with their fields."""
    redactor = Redactor()
    redactor.update({UPSTREAM_KEYS[0]})
    second = float(int(time.time()))
    times = [second + f for f in (0.0, 0.0004999, 0.0005, 0.1239999995, 0.5, 0.9994999, 0.9995, 0.9999996, 1.25)]
    times += [second + random.Random(3).random() * 5 for _ in range(200)]
    lines = [
        (created, routed_line(record, set()), record)
        for n, created in enumerate(times)
        for record in [usage(alias=f"x-{UPSTREAM_KEYS[0]}" if n % 3 == 0 else "gpt-fake", model=f"m {n}")]
    ]

    def records() -> list[logging.LogRecord]:
        made = []
        for created, message, record in lines:
            made.append(logging.LogRecord("tests.lines", logging.INFO, __file__, 0, message, None, None))
            made[-1].created, made[-1].msecs = created, (created - int(created)) * 1000
            made[-1].__dict__["fields"] = routed_fields(record)
        return made

    one_by_one, batched = io.StringIO(), io.StringIO()
    logger = logging.getLogger("tests.lines")
    logger.propagate = False
    captured = Capture()
    handlers = [CliproxyHandler(one_by_one), CliproxyHandler(batched)]
    try:
        for handler in handlers:
            handler.setFormatter(formatter(worker=worker))
            handler.addFilter(redactor)
        for record in records():
            handlers[0].handle(record)
        logger.addHandler(handlers[1])
        logger.addHandler(captured)
        log_lines(logger, lines, routed_fields)
    finally:
        for handler in (*handlers, captured):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate = True
    assert batched.getvalue() == one_by_one.getvalue()
    assert batched.getvalue().count("\n") == len(lines) and UPSTREAM_KEYS[0] not in batched.getvalue()
    assert (f"[worker {worker}]" in batched.getvalue() or '"worker":2' in batched.getvalue()) is (worker is not None)
    assert [(r.created, r.getMessage(), r.fields) for r in captured.records] == [  # type: ignore[attr-defined]
        (r.created, r.getMessage(), r.fields)  # type: ignore[attr-defined]
        for r in records()
    ]
