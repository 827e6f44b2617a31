"""`cliproxy login xai` and `cliproxy login kimi` as a user runs them: a subprocess against the fake."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.fakes.device_oauth import FakeDeviceOAuth


async def login(fake: FakeDeviceOAuth, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cliproxy", "login", *args,
        env={**os.environ, **fake.env()}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_device_only_providers_log_in_without_asking_for_device(
    device_oauth: FakeDeviceOAuth, tmp_path: Path
) -> None:
    code, out, err = await login(device_oauth, "xai", "--auth-dir", str(tmp_path))
    assert code == 0, err
    assert "GROK-1234" in out and "Saved" in out
    assert json.loads((tmp_path / "xai-grok@example.com.json").read_text())["type"] == "xai"
    code, out, err = await login(device_oauth, "kimi", "--device", "--auth-dir", str(tmp_path))
    assert code == 0, err
    assert "KIMI-5678" in out
    (kimi,) = tmp_path.glob("kimi-*.json")
    assert json.loads(kimi.read_text())["device_id"]
