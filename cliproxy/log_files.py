"""`logging-to-file`: app logs also go to rotating files, without file I/O on the event loop.

The root logger gets a `QueueHandler` (the redactor runs on it, so nothing unmasked is queued);
a `QueueListener` thread writes the records to `<logs dir>/main.log`, which rotates at 10 MiB
into `main.log.1`, `main.log.2`, … When `logs-max-total-size-mb` is above 0 the oldest rotated
files are deleted after each rotation until the directory is under that size. Stderr logging
stays on, so a terminal or a service manager keeps seeing the same lines.

The directory is `logs-dir` when set (relative to the config file), else `$WRITABLE_PATH/logs`,
else `logs/` in the working directory when that is writable, else `<auth-dir>/logs`, as in
CLIProxyAPI.
Every setting applies on reload: turning the option off stops the writer thread and closes the
file; turning it on, or moving the directory, starts a new one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path

from cliproxy.config.write import directory_lock
from cliproxy.logs import log_formatter
from cliproxy.runtime import Runtime

log = logging.getLogger(__name__)

LOG_FILE = "main.log"
ROTATE_BYTES = 10 * 1024 * 1024
MAX_BACKUPS = 10_000  # rotated files are bounded by `logs-max-total-size-mb`, not by count
FOLLOW_SECONDS = 1.0  # how often a worker looks whether another one rotated `main.log` (two stats)


def logs_dir(runtime: Runtime) -> Path:
    """Where the log files go under this snapshot (see the module docstring for the order)."""
    configured = runtime.config.logs_dir
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else (runtime.config_path.parent / path).resolve()
    writable = os.environ.get("WRITABLE_PATH", "").strip()
    if writable:
        return Path(writable).expanduser() / "logs"
    cwd = Path.cwd()
    if os.access(cwd, os.W_OK):
        return cwd / "logs"
    return runtime.auth_dir / "logs"


def rotated_files(directory: Path) -> list[Path]:
    """`main.log.N` files, oldest (highest N) first."""
    try:
        found = [p for p in directory.iterdir() if p.name.startswith(LOG_FILE + ".") and p.suffix[1:].isdigit()]
    except OSError:
        return []
    return sorted(found, key=lambda p: -int(p.suffix[1:]))


def enforce_total_size(directory: Path, max_bytes: int) -> int:
    """Delete the oldest rotated files until the log files fit in `max_bytes`; returns how many went."""
    if max_bytes <= 0:
        return 0
    current = directory / LOG_FILE
    files = rotated_files(directory)
    total = sum(p.stat().st_size for p in files) + (current.stat().st_size if current.exists() else 0)
    removed = 0
    for old in files:
        if total <= max_bytes:
            break
        try:
            size = old.stat().st_size
            old.unlink()
        except OSError:
            continue
        total -= size
        removed += 1
    return removed


class CappedFileHandler(RotatingFileHandler):
    """A rotating `main.log` that creates its directory and keeps the total size under a cap.

    `shared`: worker processes append to the same `main.log` (appends of whole records do not tear
    on a local file). One of them rotates, under an exclusive `flock` on the directory; the others
    notice that `main.log` is a new file and reopen it, instead of writing on into `main.log.1` and
    rotating again. They look at most every `follow_seconds` (a record costs no extra stats), and
    always before they rotate themselves.
    """

    def __init__(self, path: Path, max_total_bytes: int, *, shared: bool = False) -> None:
        self.max_total_bytes = max_total_bytes
        self.shared = shared
        self.follow_seconds = FOLLOW_SECONDS
        self._followed = time.monotonic()  # the last look; the file is opened fresh on the first record
        super().__init__(path, maxBytes=ROTATE_BYTES, backupCount=MAX_BACKUPS, encoding="utf-8", delay=True)

    def _open(self):  # type: ignore[no-untyped-def]  # runs in the writer thread (delay=True)
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def shouldRollover(self, record: logging.LogRecord) -> int:
        if self.shared:
            now = time.monotonic()
            if now - self._followed >= self.follow_seconds:
                self._followed = now
                self._follow_rotation()
        return super().shouldRollover(record)

    def _follow_rotation(self) -> None:
        """Reopen `main.log` when another process has rotated it away."""
        stream = self.stream
        if stream is None:
            return
        try:
            on_disk = os.stat(self.baseFilename)
        except FileNotFoundError:
            on_disk = None
        mine = os.fstat(stream.fileno())
        if on_disk is None or (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino):
            stream.close()
            self.stream = self._open()  # type: ignore[no-untyped-call]

    def doRollover(self) -> None:
        if not self.shared:
            super().doRollover()
            enforce_total_size(Path(self.baseFilename).parent, self.max_total_bytes)
            return
        with directory_lock(Path(self.baseFilename).parent):  # one rotation at a time across the workers
            self._follow_rotation()
            if self.stream is not None and self.stream.seek(0, 2) < self.maxBytes:
                return  # another worker rotated while this one waited
            super().doRollover()
            enforce_total_size(Path(self.baseFilename).parent, self.max_total_bytes)


class FileLogging:
    """The running file writer (if any) and the settings it was started with."""

    def __init__(self, *, worker: int | None = None) -> None:
        self.worker = worker  # a worker process: its lines carry its index, `main.log` is shared
        self.directory: Path | None = None
        self._queue_handler: QueueHandler | None = None
        self._listener: QueueListener | None = None
        self._file: CappedFileHandler | None = None

    @property
    def enabled(self) -> bool:
        return self._listener is not None

    def apply(self, runtime: Runtime, redactor: logging.Filter | None) -> None:
        """Start, stop, move or retune the writer to match `runtime`'s config. Never raises."""
        config = runtime.config
        if not config.logging_to_file:
            self.stop()
            return
        directory = logs_dir(runtime)
        if self.enabled and directory != self.directory:
            self.stop()
        if not self.enabled:
            self._start(directory, redactor)
        if self._file is not None:
            self._file.max_total_bytes = max(config.logs_max_total_size_mb, 0) * 1024 * 1024
            self._file.setFormatter(log_formatter(config.log_format, worker=self.worker))

    def _start(self, directory: Path, redactor: logging.Filter | None) -> None:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        file_handler = CappedFileHandler(directory / LOG_FILE, 0, shared=self.worker is not None)
        queue_handler = QueueHandler(records)
        if redactor is not None:  # masked before it is queued: the file never sees a secret
            queue_handler.addFilter(redactor)
        listener = QueueListener(records, file_handler, respect_handler_level=True)
        listener.start()
        logging.getLogger().addHandler(queue_handler)
        self.directory = directory
        self._queue_handler, self._listener, self._file = queue_handler, listener, file_handler
        log.info("logging to %s", directory / LOG_FILE)

    def stop(self, *, wait: bool = False) -> None:
        """Detach from the root logger; the thread drains the queue and closes the file."""
        listener, file_handler, queue_handler = self._listener, self._file, self._queue_handler
        if listener is None:
            return
        if queue_handler is not None:
            logging.getLogger().removeHandler(queue_handler)
        self._listener = self._file = self._queue_handler = None
        self.directory = None

        def finish() -> None:
            listener.stop()  # writes what is still queued, then joins the writer thread
            if file_handler is not None:
                file_handler.close()

        if wait:
            finish()
        else:  # a swap listener runs on the event loop: never join a thread there
            threading.Thread(target=finish, name="cliproxy-log-close", daemon=True).start()
