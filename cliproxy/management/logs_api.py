"""`GET`/`DELETE /logs`: read and clear the `logging-to-file` app log (spec §8.4).

`GET /logs?after=<unix seconds>&limit=N` answers `{"lines", "line-count", "latest-timestamp"}`
with the newest `limit` lines written after `after` (a traceback's lines count with the line that
logged it). The web panel polls it with the last `latest-timestamp` to tail the log. Both answer
400 `logging to file disabled` while the option is off. Files are read in a worker thread, and
only their tail: the panel asks for recent lines, never for hundreds of megabytes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from cliproxy import jsonio
from cliproxy.appkeys import RUNTIME
from cliproxy.log_files import LOG_FILE, logs_dir, rotated_files
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response

routes = web.RouteTableDef()

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
TAIL_BYTES = 4 * 1024 * 1024  # read at most this much from the end of each file
_TEXT_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def line_time(line: str) -> float | None:
    """The unix time a log line starts with (text or JSON format), or None for a continuation."""
    match = _TEXT_TIME.match(line)
    if match:  # `logging`'s asctime is local time
        moment = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
        return moment.timestamp() + int(match.group(2)) / 1000
    if line.startswith('{"time":'):
        try:
            value = jsonio.loads(line).get("time")
            return dt.datetime.fromisoformat(str(value)).timestamp()
        except (ValueError, AttributeError):
            return None
    return None


def _tail_lines(path: Path) -> list[str]:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - TAIL_BYTES)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if start and lines else lines  # the first line may be cut


def read_lines(directory: Path, after: float, limit: int) -> tuple[list[str], float]:
    """The newest `limit` lines written after `after`, oldest first, and the newest line time."""
    selected: list[str] = []
    latest = after
    for path in [*rotated_files(directory), directory / LOG_FILE]:
        when: float | None = None
        for line in _tail_lines(path):
            stamp = line_time(line)
            if stamp is not None:
                when = stamp
            if when is not None and when > after:
                selected.append(line)
                latest = max(latest, when)
    return selected[-limit:], latest


def clear_logs(directory: Path) -> int:
    """Delete the rotated files and empty `main.log` (the writer keeps appending to it)."""
    removed = 0
    for path in rotated_files(directory):
        try:
            path.unlink()
            removed += 1
        except OSError:
            continue
    current = directory / LOG_FILE
    if current.exists():
        with current.open("r+b") as fh:
            fh.truncate(0)
        removed += 1
    return removed


def _directory(request: web.Request) -> Path:
    runtime = request.config_dict[RUNTIME].current
    if not runtime.config.logging_to_file:
        raise api_error(400, "logging to file disabled")
    return logs_dir(runtime)


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise api_error(400, f"invalid {name}") from None


@routes.get("/logs")
async def get_logs(request: web.Request) -> web.Response:
    directory = _directory(request)
    after = _int_query(request, "after", 0)
    limit = min(max(_int_query(request, "limit", DEFAULT_LIMIT), 1), MAX_LIMIT)
    lines, latest = await asyncio.to_thread(read_lines, directory, float(after), limit)
    body: dict[str, Any] = {"lines": lines, "line-count": len(lines), "latest-timestamp": int(latest)}
    return json_response(body)


@routes.delete("/logs")
async def delete_logs(request: web.Request) -> web.Response:
    require_admin(request)
    directory = _directory(request)
    removed = await asyncio.to_thread(clear_logs, directory)
    return json_response({"success": True, "message": "Logs cleared successfully", "removed": removed})
