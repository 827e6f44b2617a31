"""Request logs: one file per API request, for debugging a client or a provider.

With `request-log: true` every non-GET request outside `/v0/management`, and every Responses
WebSocket upgrade, is written to `<logs dir>/<path>-<YYYY-MM-DDTHHMMSS>-<request id>.log`: the
request (method, path without the query, headers, body) and the response the client got (status,
headers, body). With
`request-log: false` only failed requests (status ≥ 400) are written, as `error-….log`, and only
the newest `error-logs-max-files` of those are kept.

Nothing here runs on the hot path unless a file is due: the check is one attribute read in the
`on_response_prepare` hook. The file is written by a worker thread after the response is on its
way, with mode 0600 (bodies hold prompts). Credential headers are always masked, and the text goes
through the log redactor, so no configured secret is ever written. A streamed response body is not
kept in memory; its file says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from cliproxy.clientkeys import redact
from cliproxy.log_files import logs_dir
from cliproxy.logs import SENSITIVE_NAME
from cliproxy.runtime import RuntimeHolder
from cliproxy.server.access import REQUEST_ID

log = logging.getLogger(__name__)

MANAGEMENT_PREFIXES = ("/v0/management", "/management", "/v0/account")  # account calls carry passwords
WEBSOCKET_PATHS = frozenset({"/v1/responses", "/backend-api/codex/responses"})
MAX_BODY_BYTES = 10 * 1024 * 1024  # larger bodies are cut in the file
ERROR_PREFIX = "error-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(path: str, request_id: str, when: dt.datetime, *, error: bool) -> str:
    """`v1-chat-completions-2026-12-03T061500-1a2b3c4d.log` (with `error-` in front for failures)."""
    stem = _UNSAFE.sub("_", path.strip("/").replace("/", "-")) or "root"
    return f"{ERROR_PREFIX if error else ''}{stem}-{when.strftime('%Y-%m-%dT%H%M%S')}-{request_id}.log"


def _headers_text(headers: object) -> str:
    lines = []
    for name, value in getattr(headers, "items", dict)():
        if SENSITIVE_NAME.search(name):
            scheme, _, token = value.partition(" ")
            value = f"{scheme} {redact(token)}" if token else redact(value)
        lines.append(f"  {name}: {value}")
    return "\n".join(lines)


def _body_text(body: bytes | None, note: str = "") -> str:
    if body is None:
        return note or "(none)"
    cut = len(body) > MAX_BODY_BYTES
    text = body[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    return text + (f"\n… ({len(body)} bytes, cut at {MAX_BODY_BYTES})" if cut else "")


def render(request: web.Request, response: web.StreamResponse, when: dt.datetime) -> str:
    # The handler has read the body already (it is cached); a request refused before its handler
    # ran (401, 403) is logged without it rather than reading a body nobody asked for.
    request_body: bytes | None = getattr(request, "_read_bytes", None)
    response_body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else None
    note = "(WebSocket: frames are not kept)" if response.status == 101 else "(streamed to the client; not kept)"
    return (
        "=== REQUEST ===\n"
        f"Time: {when.isoformat()}\n"
        f"Request-Id: {request.get(REQUEST_ID, '-')}\n"
        f"{request.method} {request.path} HTTP/{request.version.major}.{request.version.minor}\n"
        f"Headers:\n{_headers_text(request.headers)}\n"
        f"Body:\n{_body_text(request_body, '(not read: refused before its handler ran)')}\n\n"
        "=== RESPONSE ===\n"
        f"Status: {response.status}\n"
        f"Headers:\n{_headers_text(response.headers)}\n"
        f"Body:\n{_body_text(response_body, note)}\n"
    )


def write_log(directory: Path, name: str, text: str, keep_errors: int) -> None:
    """Write one file (0600) atomically; for error files, keep only the newest `keep_errors`. Worker thread.

    The text goes to a hidden temp file first and is renamed into place after the pruning, so a
    reader never sees a half-written file nor more than `keep_errors` error files. Several writes run
    at once (one thread each): a file another write pruned is simply gone, not an error.
    """
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    if name.startswith(ERROR_PREFIX) and keep_errors > 0:
        listed = [(mtime, p.name, p) for p in error_files(directory) if (mtime := _mtime(p)) is not None]
        errors = sorted(listed)  # (a file another write pruned since the listing is left out)
        for _, _, old in errors[: max(0, len(errors) - keep_errors + 1)]:
            with contextlib.suppress(OSError):
                old.unlink()
    os.replace(temp, directory / name)


def _mtime(path: Path) -> float | None:
    """When `path` was written; None when another write's pruning removed it since it was listed."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def error_files(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.name.startswith(ERROR_PREFIX) and p.suffix == ".log"]
    except OSError:
        return []


class RequestLogs:
    """Decides which responses get a file and writes them in worker threads; `flush` waits for them."""

    def __init__(self, holder: RuntimeHolder, mask: Callable[[str], str]) -> None:
        self.holder = holder
        self.mask = mask  # the log redactor's: no configured secret reaches a file
        self.pending: set[asyncio.Task[None]] = set()
        self._writing = threading.Lock()

    def log(self, request: web.Request, response: web.StreamResponse) -> None:
        """Called by the server's response hook: decide whether this response gets a file, and schedule it."""
        method = request.method
        if method == "GET":
            if request.path not in WEBSOCKET_PATHS or response.status != 101:
                return  # GETs are not logged, except the Responses WebSocket upgrade
        elif method == "OPTIONS" or request.path.startswith(MANAGEMENT_PREFIXES):
            return
        runtime = self.holder.current
        config = runtime.config
        failed = response.status >= 400
        if not (config.request_log or failed):
            return
        when = dt.datetime.now(dt.UTC)
        text = self.mask(render(request, response, when))
        name = file_name(request.path, request.get(REQUEST_ID, "none"), when, error=not config.request_log)
        directory = logs_dir(runtime)
        task = asyncio.create_task(asyncio.to_thread(self._write, directory, name, text, config.error_logs_max_files))
        self.pending.add(task)
        task.add_done_callback(self._finished)

    def _write(self, directory: Path, name: str, text: str, keep_errors: int) -> None:
        """One write at a time (worker threads): the pruning and the rename of one write must not
        interleave with another's, or more than `keep_errors` files would stay."""
        with self._writing:
            write_log(directory, name, text, keep_errors)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("request log not written: %s", task.exception())

    async def flush(self) -> None:
        """On shutdown, let the files still being written finish."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
