"""One summary line per API request when it ends: JSON fields with `log-format: json` (a real
process, every line of its log parsed), `key=value` pairs otherwise; secrets stay masked."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cliproxy.logs import JSONFormatter, Redactor
from cliproxy.server.request_ends import LINE_DELAY_SECONDS, logfmt
from cliproxy.server.services import SERVICES
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
