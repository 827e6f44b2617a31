"""`logging-to-file`: masked lines in rotating files, size cap, live toggle, `GET`/`DELETE /logs`."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from cliproxy.clientkeys import redact
from cliproxy.log_files import LOG_FILE, CappedFileHandler, logs_dir
from cliproxy.management.logs_api import line_time
from cliproxy.watch import load_runtime
from tests.conftest import ProxyFactory
from tests.management.client import MANAGEMENT_BLOCK, VIEWER, Mgmt

CLIENT_KEY = "sk-file-log-client-key-0001"
CONFIG = f"host: 127.0.0.1\nlogging-to-file: true\nlogs-dir: ./logs\napi-keys: [{CLIENT_KEY}]\n" + MANAGEMENT_BLOCK


async def lines_until(mgmt: Mgmt, needle: str) -> list[str]:
    """`GET /logs` until a line holds `needle` (the writer thread appends in the background)."""
    deadline = time.monotonic() + 10
    while True:
        reply = await mgmt.get("/logs")
        assert reply.status == 200, reply
        lines: list[str] = reply.json()["lines"]
        if any(needle in line for line in lines):
            return lines
        assert time.monotonic() < deadline, lines
        await asyncio.sleep(0.05)


async def test_file_log_is_masked_tailed_cleared_and_switched_off_live(proxy: ProxyFactory, tmp_path: Path) -> None:
    server = await proxy(CONFIG)
    mgmt = Mgmt(server)
    probe = logging.getLogger("tests.file_probe")
    probe.warning("probe-one uses %s", CLIENT_KEY)
    lines = await lines_until(mgmt, "probe-one")
    text = "\n".join(lines)
    assert CLIENT_KEY not in text and redact(CLIENT_KEY) in text
    main_log = tmp_path / "logs" / LOG_FILE
    assert CLIENT_KEY not in main_log.read_text() and "probe-one" in main_log.read_text()

    reply = (await mgmt.get("/logs")).json()
    assert reply["line-count"] == len(reply["lines"]) and reply["latest-timestamp"] >= int(time.time()) - 60
    later = (await mgmt.get(f"/logs?after={reply['latest-timestamp'] + 1}")).json()
    assert later["lines"] == [] and later["line-count"] == 0
    assert len((await mgmt.get("/logs?limit=1")).json()["lines"]) == 1

    assert (await Mgmt(server, key=VIEWER).delete("/logs")).status == 403
    cleared = await mgmt.delete("/logs")
    assert cleared.json() == {"success": True, "message": "Logs cleared successfully", "removed": 1}
    assert "probe-one" not in main_log.read_text()
    probe.warning("probe-two")
    assert not any("probe-one" in line for line in await lines_until(mgmt, "probe-two"))

    # Switched off through the API: the writer stops and /logs says why.
    assert (await mgmt.put("/logging-to-file", json={"value": False})).status == 200
    reply = await mgmt.get("/logs")
    assert (reply.status, reply.json()) == (400, {"error": "logging to file disabled"})
    probe.warning("probe-three")
    await asyncio.sleep(0.2)
    assert "probe-three" not in main_log.read_text()
    # And on again, live.
    assert (await mgmt.put("/logging-to-file", json={"value": True})).status == 200
    probe.warning("probe-four")
    await lines_until(mgmt, "probe-four")


def test_rotation_keeps_the_total_under_the_cap(tmp_path: Path) -> None:
    handler = CappedFileHandler(tmp_path / "logs" / LOG_FILE, max_total_bytes=4000)
    handler.maxBytes = 1000  # rotate often; the cap is what is being tested
    handler.setFormatter(logging.Formatter("%(message)s"))
    for n in range(200):
        handler.emit(logging.LogRecord("t", logging.INFO, __file__, 1, f"line {n:04d} " + "x" * 80, None, None))
    handler.close()
    files = list((tmp_path / "logs").iterdir())
    assert len(files) > 2  # it rotated
    assert sum(p.stat().st_size for p in files) <= 4000 + 1000
    assert "line 0199" in (tmp_path / "logs" / LOG_FILE).read_text()
    assert not any("line 0000" in p.read_text() for p in files)  # the oldest went first


def record(text: str) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, text, None, None)


def test_worker_follows_another_workers_rotation(tmp_path: Path) -> None:
    """Two workers' handlers on one `main.log`: after one rotates, the other writes to the new file
    (not on into `main.log.1`) once it looks again, and does not rotate a second time."""
    path = tmp_path / "logs" / LOG_FILE
    first, second = (CappedFileHandler(path, max_total_bytes=0, shared=True) for _ in range(2))
    for handler in (first, second):
        handler.maxBytes = 1000
        handler.setFormatter(logging.Formatter("%(message)s"))
    second.follow_seconds = 0.0  # look before every record (the default looks once a second)
    second.emit(record("second opens main.log"))
    for n in range(20):
        first.emit(record(f"first {n:02d} " + "x" * 80))
    assert (tmp_path / "logs" / (LOG_FILE + ".1")).exists()  # the first one rotated
    second.emit(record("second after the rotation"))
    first.close()
    second.close()
    assert "second after the rotation" in path.read_text()
    assert not (tmp_path / "logs" / (LOG_FILE + ".2")).exists()


def test_logs_dir_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yaml").write_text("auth-dir: ./auths\n")
    runtime = load_runtime(tmp_path / "config.yaml")
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "w"))
    assert logs_dir(runtime) == tmp_path / "w" / "logs"
    monkeypatch.delenv("WRITABLE_PATH")
    monkeypatch.chdir(tmp_path)
    assert logs_dir(runtime) == tmp_path / "logs"
    (tmp_path / "config.yaml").write_text("logs-dir: var/log\n")
    assert logs_dir(load_runtime(tmp_path / "config.yaml")) == tmp_path / "var" / "log"


def test_line_time_reads_both_formats() -> None:
    assert line_time("2026-12-03 05:52:04,823 INFO x: y") is not None
    assert line_time('{"time":"2026-12-03T05:52:04.823+00:00","level":"INFO"}') == 1796277124.823
    assert line_time("Traceback (most recent call last):") is None


def test_reading_stops_at_the_files_it_needs(tmp_path: Path) -> None:
    from cliproxy.management.logs_api import read_lines

    def line(ts: float, text: str) -> str:
        import datetime as dt

        stamp = dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp},000 INFO t: {text}\n"

    base = 1_800_000_000.0
    (tmp_path / "main.log.2").write_text(line(base, "oldest") + line(base + 1, "old"))
    (tmp_path / "main.log.1").write_text(line(base + 2, "middle") + "Traceback (most recent call last):\n")
    (tmp_path / "main.log").write_text(line(base + 3, "new") + line(base + 4, "newest"))
    lines, latest = read_lines(tmp_path, base + 1, 100)
    assert [x.rsplit(" t: ", 1)[-1] for x in lines] == ["middle", "Traceback (most recent call last):", "new", "newest"]
    assert latest == base + 4
    lines, _ = read_lines(tmp_path, 0, 2)
    assert [x.rsplit(" t: ", 1)[-1] for x in lines] == ["new", "newest"]
    # main.log.1 already reaches back past `after`: main.log.2 is not opened (a line it could not
    # hold in reality proves it).
    (tmp_path / "main.log.2").write_text(line(base + 10, "never read"))
    lines, _ = read_lines(tmp_path, base + 2.5, 100)
    assert [x.rsplit(" t: ", 1)[-1] for x in lines] == ["new", "newest"]
