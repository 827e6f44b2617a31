"""A fresh machine: no config file → a safe generated one, keys shown once, `/healthz` 200."""

from __future__ import annotations

import re
import stat
import subprocess
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from cliproxy.config.load import generate_default_config, parse_config_text
from cliproxy.config.write import set_yaml_value
from tests.server.processes import free_port, spawn, stop, wait_healthy


def test_generated_config_is_safe(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    created = generate_default_config(path)
    text = path.read_text()
    config, warnings, _ = parse_config_text(text)
    assert warnings == []
    assert config.host == "127.0.0.1" and config.port == 8317 and config.auth_dir == "./auths"
    assert config.api_keys == (created.client_key,)
    assert not config.uses_template_keys
    secret_hash = config.remote_management.secret_key
    assert secret_hash.startswith("$2") and bcrypt.checkpw(created.management_secret.encode(), secret_hash.encode())
    assert created.management_secret not in text
    assert config.remote_management.allow_remote is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(created.client_key) >= 40 and len(created.management_secret) >= 24


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, deadline: float = 30.0) -> bytes:
    """Read the child's stdout line by line until `marker` has been seen."""
    assert proc.stdout is not None
    seen = b""
    end = time.monotonic() + deadline
    while marker not in seen:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        assert time.monotonic() < end, seen
    return seen


@pytest.mark.subprocess
async def test_first_start_generates_config_prints_keys_once_and_serves(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    # First start: no file. It writes the config and prints the keys, then listens on 8317; that
    # port may be taken on a shared machine, so this run is only used for what it prints.
    first = spawn(["-m", "cliproxy", "--config", str(path)], cwd=tmp_path)
    try:
        banner = _read_until(first, b"not shown again").decode()
    finally:
        stop(first)
    client_key = re.search(r"client API key:\s+(\S+)", banner)
    secret = re.search(r"management secret:\s+(\S+)", banner)
    assert client_key and secret, banner
    client_key_text, secret_text = client_key.group(1), secret.group(1)
    text = path.read_text()
    assert client_key_text in text
    assert secret_text not in text  # only the bcrypt hash is stored
    assert re.search(r'secret-key: "\$2[aby]\$', text)

    # Second start on a free port (same file, port changed the way a user would edit it).
    port = free_port()
    path.write_text(set_yaml_value(text, ("port",), port))
    second = spawn(["-m", "cliproxy", "--config", str(path)], cwd=tmp_path)
    try:
        await wait_healthy(second, f"http://127.0.0.1:{port}/healthz")
        async with aiohttp.ClientSession() as session:
            async with session.head(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200
            async with session.get(
                f"http://127.0.0.1:{port}/v0/management/config", headers={"Authorization": f"Bearer {secret_text}"}
            ) as r:
                assert r.status == 200
            async with session.get(
                f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {client_key_text}"}
            ) as r:
                assert r.status != 401
            async with session.get(f"http://127.0.0.1:{port}/v1/models") as r:
                assert r.status == 401
    finally:
        code, out, err = stop(second)
    assert code == 0, err
    assert client_key_text not in out + err and secret_text not in out + err  # shown once only
