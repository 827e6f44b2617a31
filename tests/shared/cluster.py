"""Several real `python -m cliproxy` processes sharing one Redis, for the shared-state tests."""

from __future__ import annotations

import asyncio
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.management.client import SECRET, SECRET_HASH
from tests.server.processes import free_port, spawn, stop, wait_healthy

LIMITED = "sk-limited-client-0001"
PLAIN = "sk-plain-client-0002"
UPSTREAM_KEY = "sk-upstream-key-0003"


@dataclass
class Node:
    proc: Any
    port: int
    directory: Path
    out: str = ""
    err: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str, *, key: str = SECRET) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers={"Authorization": f"Bearer {key}"}) as r,
        ):
            body = await r.read()
            return r.status, body

    async def post_json(self, path: str, data: Any, *, key: str = SECRET) -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, json=data, headers={"Authorization": f"Bearer {key}"}) as r,
        ):
            return r.status, await r.read()


def compat_yaml(base: str) -> str:
    """One OpenAI-compatible upstream credential serving `gpt-fake` at the fake upstream."""
    return f"""
openai-compatibility:
  - name: compat
    base-url: {base}/v1
    api-key-entries:
      - api-key: {UPSTREAM_KEY}
    models:
      - name: gpt-fake
"""


def keys_yaml(**limits: Any) -> str:
    """A limited client key (`limits` as YAML names with `_`) and a plain one."""
    lines = "".join(f"    {name.replace('_', '-')}: {value}\n" for name, value in limits.items())
    return f"api-keys:\n  - {PLAIN}\n  - key: {LIMITED}\n    name: limited\n{lines}"


async def start_nodes(
    tmp_path: Path,
    body: str,
    redis_url: str,
    *,
    count: int = 2,
    on_down: str = "fail-closed",
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    own_auth_dirs: bool = False,
) -> list[Node]:
    """`count` processes with the same `body` config, each with its own port, directory and usage db;
    one `auths` folder for all, or (`own_auth_dirs`, as on several hosts) `node<i>/auths` each."""
    auths = tmp_path / "auths"
    auths.mkdir(exist_ok=True)
    nodes = []
    for index in range(count):
        directory = tmp_path / f"node{index}"
        directory.mkdir(exist_ok=True)
        if own_auth_dirs:
            auths = directory / "auths"
            auths.mkdir(exist_ok=True)
        port = free_port()
        text = (
            f"host: 127.0.0.1\nport: {port}\nauth-dir: {auths}\nusage-db: ./usage.db\n"
            f'remote-management:\n  secret-key: "{SECRET_HASH}"\n'
            f'shared-state:\n  redis-url: "{redis_url}"\n  on-redis-down: {on_down}\n' + textwrap.dedent(body)
        )
        (directory / "config.yaml").write_text(text)
        proc = spawn(["-m", "cliproxy", "--config", "config.yaml"], cwd=directory, env=env)
        nodes.append(Node(proc, port, directory))
    try:
        for node in nodes:
            await wait_healthy(node.proc, node.url + ("/readyz" if wait_ready else "/healthz"))
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        if node.proc.poll() is None or not node.err:
            _, node.out, node.err = stop(node.proc)


async def eventually(check: Any, timeout: float = 10.0, step: float = 0.05) -> None:
    """Await `check()` until it returns true (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(step)
