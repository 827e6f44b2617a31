"""`workers: 2` as real processes: one port, both workers answer, restarts, clean stops, hot reload.

Each test starts `python -m cliproxy` with `workers: 2` (the supervisor) and talks to it over HTTP
on fresh connections, so the kernel's `SO_REUSEPORT` spreading decides which worker answers. A
worker says who it is in `/healthz` (`worker`, `pid`), which is how the tests find the workers'
process ids. Output goes to a file so that the tests can read the log while the server runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.server.processes import REPO, free_port
from tests.shared.cluster import LIMITED, compat_yaml, keys_yaml
from tests.shared.conftest import RedisServer

pytestmark = pytest.mark.subprocess

CLIENT_KEY = "sk-workers-test-client-key"
NEW_KEY = "sk-workers-test-new-client-key"
SECRET = "workers-test-management-secret"
DEADLINE = 30.0


class Cluster:
    """A supervisor process and what the tests need to watch it."""

    def __init__(self, tmp_path: Path, redis_url: str, extra: str = "") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "server.log"
        (tmp_path / "config.yaml").write_text(
            f"host: 127.0.0.1\nport: {self.port}\nauth-dir: ./auths\n"
            f"remote-management:\n  secret-key: {SECRET}\nworkers: 2\n"
            f"shared-state:\n  redis-url: {redis_url}\n" + (extra or f"api-keys: [{CLIENT_KEY}]\n")
        )
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cliproxy", "--config", "config.yaml"],
                cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        """One request on a connection of its own (a reused one would always reach the same worker)."""
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(self.base + path, headers=headers) as r,
        ):
            return r.status, dict(r.headers), await r.read()

    async def workers(self, *, want: int = 2) -> dict[int, int]:
        """worker index → pid, from `/healthz` on fresh connections, until `want` workers answered."""
        seen: dict[int, int] = {}
        end = time.monotonic() + DEADLINE
        while len(seen) < want:
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < end, f"workers seen: {seen}\n{self.output()}"
            try:
                status, _, body = await self.get("/healthz")
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
                continue
            if status == 200:
                answer = json.loads(body)
                seen[answer["worker"]] = answer["pid"]
        return seen

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=DEADLINE + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def wait_gone(pids: list[int], seconds: float = DEADLINE) -> list[int]:
    end = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return left


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Cluster]:
    started = Cluster(tmp_path, redis_server.url)
    try:
        yield started
    finally:
        clean_up(started)


def clean_up(started: Cluster) -> None:
    """Stop the supervisor and kill whatever a test left behind: never a stray worker on the machine."""
    started.stop(signal.SIGKILL if started.proc.poll() is None else signal.SIGTERM)
    for pid in map(int, re.findall(r"started \(pid (\d+)\)", started.output())):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_two_workers_serve_one_port_and_both_answer(cluster: Cluster) -> None:
    pids = await cluster.workers()
    assert set(pids) == {1, 2} and len(set(pids.values())) == 2
    assert cluster.proc.pid not in pids.values()  # the supervisor itself serves nothing
    answered = {1: 0, 2: 0}
    for _ in range(60):
        status, headers, _ = await cluster.get("/healthz")
        assert status == 200
        answered[int(headers["X-Cliproxy-Worker"])] += 1
    assert answered[1] > 0 and answered[2] > 0, answered  # connections spread over both
    for _ in range(10):  # the client API too, through the same port
        status, _, body = await cluster.get("/v1/models", Authorization=f"Bearer {CLIENT_KEY}")
        assert status == 200, body
    for _ in range(20):  # ready on every worker: each opened the shared usage and accounts files
        status, _, body = await cluster.get("/readyz")
        assert status == 200, body
    assert "cannot use" not in cluster.output()
    log = cluster.output()
    assert "[worker 1] cliproxy.server.serve: cliproxy" in log and "[worker 2] cliproxy.server.serve" in log


async def test_a_killed_worker_is_restarted_and_logged(cluster: Cluster) -> None:
    pids = await cluster.workers()
    os.kill(pids[1], signal.SIGKILL)
    end = time.monotonic() + DEADLINE
    while True:
        now = await cluster.workers()
        if now[1] != pids[1]:
            break
        assert time.monotonic() < end, cluster.output()
    assert now[2] == pids[2]  # the other worker was left alone
    log = cluster.output()
    assert f"worker 1 (pid {pids[1]}) exited with signal SIGKILL" in log
    assert f"worker 1 started (pid {now[1]})" in log


async def test_sigterm_stops_every_worker_and_the_supervisor(cluster: Cluster) -> None:
    pids = await cluster.workers()
    assert cluster.stop(signal.SIGTERM) == 0
    assert await wait_gone(list(pids.values()), seconds=1.0) == []  # the supervisor waited for them
    assert "received SIGTERM: stopping 2 workers" in cluster.output()
    assert "all workers stopped" in cluster.output()


async def test_workers_stop_when_the_supervisor_is_killed(cluster: Cluster) -> None:
    pids = await cluster.workers()
    cluster.stop(signal.SIGKILL)
    assert await wait_gone(list(pids.values())) == []
    with pytest.raises(aiohttp.ClientError):
        await cluster.get("/healthz")


async def test_a_management_write_through_the_port_reaches_every_worker(cluster: Cluster) -> None:
    await cluster.workers()
    admin = {"Authorization": f"Bearer {SECRET}"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{cluster.base}/v0/management/api-keys", json=[NEW_KEY], headers=admin) as r,
    ):
        assert r.status == 200, await r.text()
    # The worker that took the write reloaded at once; the other through its file watcher.
    end = time.monotonic() + DEADLINE
    while cluster.output().count("cliproxy.watch: config reloaded") < 2:
        assert time.monotonic() < end, cluster.output()
        await asyncio.sleep(0.05)
    log = cluster.output()
    assert "[worker 1] cliproxy.watch: config reloaded" in log and "[worker 2] cliproxy.watch: config reloaded" in log
    for _ in range(20):  # fresh connections: both workers answer, and both know the new key only
        status, _, _ = await cluster.get("/v1/models", Authorization=f"Bearer {NEW_KEY}")
        assert status == 200
        status, _, _ = await cluster.get("/v1/models", Authorization=f"Bearer {CLIENT_KEY}")
        assert status == 401


async def eventually_everywhere(
    session: aiohttp.ClientSession, method: str, url: str, *, want: int = 200, **kwargs: object
) -> None:
    """Until 20 requests in a row, each on a fresh connection (so both workers get some), answer `want`."""
    end = time.monotonic() + DEADLINE
    streak = 0
    while streak < 20:
        async with session.request(method, url, **kwargs) as r:  # type: ignore[arg-type]
            streak = streak + 1 if r.status == want else 0
        if not streak:
            assert time.monotonic() < end, f"{method} {url} never answered {want} on every worker"
            await asyncio.sleep(0.1)


async def test_accounts_made_through_one_worker_work_through_every_worker(cluster: Cluster) -> None:
    """A user, a signed-in session and a member key are one process's records in memory: the other
    worker takes them in from the shared accounts file (and both sign cookies with its one key)."""
    await cluster.workers()
    admin = {"Authorization": f"Bearer {SECRET}"}
    password = "correct horse battery staple"
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as browser:
        body = {"email": "ann@example.com", "role": "user", "password": password}
        async with browser.post(f"{cluster.base}/v0/management/users", json=body, headers=admin) as r:
            assert r.status == 201, await r.text()
        login = {"email": "ann@example.com", "password": password}
        end = time.monotonic() + DEADLINE
        while True:  # the worker that takes the sign-in may not have taken in the user yet
            async with browser.post(f"{cluster.base}/v0/account/login", json=login) as r:
                if r.status == 200:
                    csrf = (await r.json())["csrf"]
                    break
            assert time.monotonic() < end, "the new user could never sign in"
            await asyncio.sleep(0.1)
        await eventually_everywhere(browser, "GET", f"{cluster.base}/v0/account/me")
        async with browser.post(
            f"{cluster.base}/v0/account/keys", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf}
        ) as r:
            assert r.status == 201, await r.text()
            member_key = (await r.json())["key"]
        bearer = {"Authorization": f"Bearer {member_key}"}
        await eventually_everywhere(browser, "GET", f"{cluster.base}/v1/models", headers=bearer)


async def test_two_workers_on_one_port_hold_one_key_limit(
    tmp_path: Path, redis_server: RedisServer, upstream: tuple[FakeUpstream, str]
) -> None:
    """12 requests on fresh connections spread over both workers; a limit of 3 a minute lets exactly 3
    through (counted per worker, up to 6 would pass). The request lines say which worker served each."""
    fake, base = upstream
    extra = keys_yaml(max_requests_per_minute=3) + compat_yaml(base) + "log-format: json\n"
    started = Cluster(tmp_path, redis_server.url, extra)
    try:
        await started.workers()
        statuses = []
        for _ in range(12):
            async with openai.AsyncOpenAI(base_url=started.base + "/v1", api_key=LIMITED, max_retries=0) as ai:
                try:
                    await ai.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
                    statuses.append(200)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
        assert statuses.count(200) == 3 and statuses.count(429) == 9, statuses
        assert len(fake.seen) == 3

        def served_by() -> list[int]:
            lines = [json.loads(line) for line in started.output().splitlines() if line.startswith("{")]
            return [line["worker"] for line in lines if "request_id" in line and line.get("status") in (200, 429)]

        end = time.monotonic() + DEADLINE
        while len(served_by()) < 12 and time.monotonic() < end:  # lines are written in batches
            await asyncio.sleep(0.05)
        assert sorted(set(served_by())) == [1, 2], started.output()
        assert started.stop(signal.SIGTERM) == 0
    finally:
        clean_up(started)
