"""`make soak` for a few seconds (`--smoke`): proxy, fake upstreams and clients run end to end.

A smoke run only: so the ten-minute soak cannot rot between the times someone runs it. Its traffic
is too short to say anything about memory, and its timing limits are loose because the suite may
share the machine; the correctness checks (every request ended, nothing but the allowed errors,
descriptors back to their start count) hold as in the full run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.smoke
@pytest.mark.subprocess
def test_soak_smoke_run_passes() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak" / "soak.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "SOAK PASSED" in run.stdout
