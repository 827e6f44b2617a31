"""Request logs over real HTTP: `request-log: true` writes every API request, `false` only failures
(newest `error-logs-max-files` kept); files never hold a secret; the management API finds them."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import aiohttp
import openai
import pytest

from cliproxy.clientkeys import redact
from tests.fakes.fixtures import CLIENT_KEY, Starter, start_proxy, upstream
from tests.fakes.upstreams import FakeUpstream
from tests.management.client import MANAGEMENT_BLOCK, Mgmt

__all__ = ["start_proxy", "upstream"]  # fixtures

UPSTREAM_KEY = "sk-up-request-log-0001"


def config(base: str, *, request_log: bool, extra: str = "") -> str:
    return f"""
request-log: {str(request_log).lower()}
logs-dir: ./logs
{extra}
openai-compatibility:
  - name: fake
    base-url: {base}/v1
    api-key-entries:
      - api-key: {UPSTREAM_KEY}
    models:
      - name: gpt-fake
{MANAGEMENT_BLOCK}"""


async def files_until(directory: Path, count: int, pattern: str = "*.log") -> list[Path]:
    """The log files once `count` exist (a worker thread writes them after the response)."""
    deadline = time.monotonic() + 10
    while True:
        found = sorted(directory.glob(pattern)) if directory.is_dir() else []
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.02)


async def test_request_log_on_writes_each_api_request(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, request_log=True))
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hello request log"}]
    )
    request_id = raw.headers["X-Request-Id"]
    await client.models.list()  # GETs are not logged
    (path,) = await files_until(tmp_path / "logs", 1)
    assert path.name.startswith("v1-chat-completions-") and path.name.endswith(f"-{request_id}.log")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "POST /v1/chat/completions" in text and "hello request log" in text  # the request
    assert "Status: 200" in text and "Hello from fake" in text  # the response
    assert CLIENT_KEY not in text and redact(CLIENT_KEY) in text and UPSTREAM_KEY not in text

    mgmt = Mgmt(proxy.server)
    reply = await mgmt.get(f"/request-log-by-id/{request_id}")
    assert reply.status == 200 and reply.body == path.read_bytes()
    assert (await mgmt.get("/request-error-logs")).json() == {"files": []}  # every request is logged
    assert (await mgmt.get("/request-log-by-id/ffffffff")).status == 404


async def test_request_log_off_keeps_only_the_newest_failures(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base, request_log=False, extra="error-logs-max-files: 2"))
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    await client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "fine"}])
    fake.fail(500, times=1)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "boom"}])
    (first,) = await files_until(tmp_path / "logs", 1)
    assert first.name.startswith("error-v1-chat-completions-")
    assert "Status: 500" in first.read_text() and "boom" in first.read_text()
    ids = []
    async with aiohttp.ClientSession() as session:
        for n in range(3):  # wrong keys: refused by the front door, logged without the body
            headers = {"Authorization": f"Bearer sk-wrong-{n}-{CLIENT_KEY}"}
            async with session.post(proxy.url + "/v1/messages", headers=headers, json={}) as r:
                assert r.status == 401
                ids.append(r.headers["X-Request-Id"])
            await files_until(tmp_path / "logs", 1, f"error-v1-messages-*-{ids[-1]}.log")  # one at a time
    files = sorted((tmp_path / "logs").glob("*.log"))
    assert sorted(p.name.rsplit("-", 1)[1] for p in files) == sorted(f"{i}.log" for i in ids[1:])  # newest two
    assert all(p.name.startswith("error-v1-messages-") for p in files)
    assert "(not read: refused before its handler ran)" in files[0].read_text()
    assert CLIENT_KEY not in "".join(p.read_text() for p in files)

    mgmt = Mgmt(proxy.server)
    listed = (await mgmt.get("/request-error-logs")).json()["files"]
    assert sorted(f["name"] for f in listed) == [p.name for p in files]
    assert all(f["size"] > 0 and isinstance(f["modified"], int) for f in listed)
    reply = await mgmt.get(f"/request-error-logs/{files[0].name}")
    assert reply.status == 200 and reply.body == files[0].read_bytes()
    for name, status in (("..%2Fconfig.yaml", 400), ("v1-x.log", 400), ("error-missing.log", 404)):
        assert (await mgmt.get(f"/request-error-logs/{name}")).status == status, name


async def test_responses_websocket_upgrade_is_logged(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter, tmp_path: Path
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base, request_log=True))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(proxy.url + "/v1/responses", headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as ws,
    ):
        (path,) = await files_until(tmp_path / "logs", 1)
        await ws.close()
    assert path.name.startswith("v1-responses-")
    text = path.read_text()
    assert "GET /v1/responses" in text and "Status: 101" in text and "(WebSocket: frames are not kept)" in text
    assert CLIENT_KEY not in text
