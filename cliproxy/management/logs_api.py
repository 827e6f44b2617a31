"""`GET`/`DELETE /logs`: read and clear the `logging-to-file` app log; and the request
logs: `GET /request-error-logs` (list), `/request-error-logs/{name}`, `/request-log-by-id/{id}`.

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
from cliproxy.log_files import LOG_FILE, logs_dir, rotated_files
from cliproxy.management.guard import require_admin
from cliproxy.management.http import api_error, json_response
from cliproxy.server.request_log import ERROR_PREFIX, error_files
from cliproxy.server.services import SERVICES

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
    """The newest `limit` lines written after `after`, oldest first, and the newest line time.

    Files are visited newest first (`main.log`, `main.log.1`, …) and the walk stops once it has
    `limit` lines or reaches lines older than `after`: a long history is never read in full.
    """
    newest_first: list[list[str]] = []
    count = 0
    latest = after
    for path in [directory / LOG_FILE, *reversed(rotated_files(directory))]:
        selected: list[str] = []
        when: float | None = None
        reached_old = False
        for line in _tail_lines(path):
            stamp = line_time(line)
            if stamp is not None:
                when = stamp
                reached_old = reached_old or stamp <= after
            if when is not None and when > after:
                selected.append(line)
                latest = max(latest, when)
        newest_first.append(selected)
        count += len(selected)
        if count >= limit or reached_old:
            break
    lines = [line for chunk in reversed(newest_first) for line in chunk]
    return lines[-limit:], latest


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
    runtime = request.config_dict[SERVICES].holder.current
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


# --------------------------------------------------------------------------- request logs


_SAFE_LOG_NAME = re.compile(r"^[A-Za-z0-9._-]+\.log$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _file_response(path: Path) -> web.Response:
    return web.Response(
        body=path.read_bytes(),
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )


def _list_error_logs(directory: Path) -> list[dict[str, Any]]:
    files = []
    for path in error_files(directory):
        try:
            info = path.stat()
        except OSError:
            continue
        files.append({"name": path.name, "size": info.st_size, "modified": int(info.st_mtime)})
    return sorted(files, key=lambda f: (-f["modified"], f["name"]))


@routes.get("/request-error-logs")
async def list_request_error_logs(request: web.Request) -> web.Response:
    """The `error-*.log` files, newest first; empty while `request-log` is on (every request is logged)."""
    runtime = request.config_dict[SERVICES].holder.current
    if runtime.config.request_log:
        return json_response({"files": []})
    return json_response({"files": await asyncio.to_thread(_list_error_logs, logs_dir(runtime))})


@routes.get("/request-error-logs/{name}")
async def get_request_error_log(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not _SAFE_LOG_NAME.match(name) or not name.startswith(ERROR_PREFIX) or ".." in name:
        raise api_error(400, "invalid name")
    path = logs_dir(request.config_dict[SERVICES].holder.current) / name
    try:
        return await asyncio.to_thread(_file_response, path)
    except FileNotFoundError:
        raise api_error(404, "file not found") from None


@routes.get("/request-log-by-id/{id}")
async def get_request_log_by_id(request: web.Request) -> web.Response:
    """The request log (or error log) of one request, found by the id in its X-Request-Id header."""
    request_id = request.match_info["id"]
    if not _SAFE_ID.match(request_id):
        raise api_error(400, "invalid id")
    directory = logs_dir(request.config_dict[SERVICES].holder.current)

    def find() -> Path | None:
        try:
            return next(iter(sorted(directory.glob(f"*-{request_id}.log"))), None)
        except OSError:
            return None

    path = await asyncio.to_thread(find)
    if path is None:
        raise api_error(404, "log not found")
    return await asyncio.to_thread(_file_response, path)
