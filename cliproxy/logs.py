"""Logging: plain or JSON-lines output, and a filter that masks every configured secret.

Code never logs a key on purpose (it uses `redact()`), but exceptions and third-party libraries
do not know that rule. The `Redactor` is a last line of defence on every root handler: each record
is rendered once and every configured secret in it (client keys, provider keys and tokens, header
credentials, management secrets, OAuth tokens from auth files) becomes `sk-…abcd`. Its secret set
follows every runtime swap, so keys added by a reload are masked from that moment on.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from logging.handlers import BufferingHandler
from typing import Any, BinaryIO, TextIO, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from cliproxy import jsonio
from cliproxy.clientkeys import redact
from cliproxy.runtime import Runtime

log = logging.getLogger(__name__)

MAX_DEPTH = 12
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; real keys are far longer
SENSITIVE_NAME = re.compile(r"key|token|secret|password|passwd|authorization|cookie|credential", re.IGNORECASE)
NOT_SECRET_NAMES = frozenset({"support-prompt-cache-key", "key-sha256", "cache-user-id", "api-key-entries"})
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FLUSH_SECONDS = 0.2  # INFO lines reach stderr at most this late (warnings and errors at once)
LOG_BUFFER_BYTES = 1 << 16

T = TypeVar("T")
Fields = dict[str, Any]  # what a request line's JSON shows besides its message (see `log_lines`)


def _walk(value: Any, name: str, out: set[str], depth: int = 0) -> None:
    """Collect string values stored under sensitive names, at any depth (bounded)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True)
    elif hasattr(value, "__dataclass_fields__"):
        value = {f: getattr(value, f) for f in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, str(key), out, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _walk(item, name, out, depth + 1)
    elif isinstance(value, str) and name in ("proxy-url", "proxy_url", "redis-url"):
        password = urlsplit(value).password if "@" in value else None
        if password:
            out.add(password)
    elif (
        isinstance(value, str)
        and len(value) >= MIN_SECRET_LENGTH
        and SENSITIVE_NAME.search(name)
        and name not in NOT_SECRET_NAMES
    ):
        out.add(value)


def _header_credentials(headers: Mapping[str, Any], out: set[str]) -> None:
    """Credential-like header values; for `Bearer x` both the whole value and `x`."""
    for name, value in headers.items():
        if isinstance(value, str) and SENSITIVE_NAME.search(name):
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                out.add(token.strip())
            out.add(value)


def collect_secrets(runtime: Runtime) -> set[str]:
    """Every secret this snapshot knows: config, management access, and auth files."""
    out: set[str] = set()
    config = runtime.config.model_dump(by_alias=True)
    for key in config.get("api-keys", ()):  # plain strings have no sensitive name above them
        if isinstance(key, str):
            out.add(key)
    _walk(config, "", out)
    for section in config.values():
        for entry in section if isinstance(section, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("headers"), dict):
                _header_credentials(entry["headers"], out)
    access = runtime.management
    out.update(v for v in (access.secret_hash, access.env_password, *access.viewer_hashes) if v)
    for item in runtime.auth_files:
        _walk(item, "", out)
        headers = getattr(item, "headers", None)
        if isinstance(headers, Mapping):
            _header_credentials(headers, out)
    return {s for s in out if len(s) >= MIN_SECRET_LENGTH}


class Redactor(logging.Filter):
    """A handler filter that rewrites each record with every known secret masked."""

    def __init__(self) -> None:
        super().__init__("")
        self._pattern: re.Pattern[str] | None = None

    def update(self, secrets: Iterable[str]) -> None:
        ordered = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(lambda m: redact(m.group(0)), text) if pattern else text

    def mask_line(self, message: str, fields: Fields | None) -> tuple[str, Fields | None]:
        """A line and its fields, masked; the fields only when the message had a secret (it shows them all)."""
        masked = self.mask(message)
        if masked == message:
            return message, fields
        if fields is not None:
            fields = {k: self.mask(v) if isinstance(v, str) else v for k, v in fields.items()}
        return masked, fields

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        message = record.getMessage()
        fields = getattr(record, "fields", None)
        masked, masked_fields = self.mask_line(message, fields if isinstance(fields, dict) else None)
        if masked != message:
            record.msg, record.args = masked, None
            if isinstance(fields, dict):  # a request line: its message shows every field value
                record.__dict__["fields"] = masked_fields
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`; `format_line` writes exactly what `format` writes for an INFO record.

    The date and time of a second is made once: the request lines of that second share it."""

    def __init__(self, *, worker: int | None = None) -> None:
        self.tag = "" if worker is None else f"[worker {worker}] "  # a worker process's lines say which
        super().__init__(TEXT_FORMAT.replace("%(name)s", f"{self.tag}%(name)s", 1))
        self._second: tuple[int, str] = (-1, "")  # one attribute: another thread may read it meanwhile

    def format_line(self, logger: str, created: float, message: str, fields: Fields | None) -> str:
        second, stamp = self._second
        if int(created) != second:
            second = int(created)
            stamp = time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, stamp)
        return f"{stamp},{int((created - second) * 1000):03d} INFO {self.tag}{logger}: {message}"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any).

    A record logged with `extra={"fields": {...}}` (the request lines) also carries those fields
    as keys of its own, so a log pipeline reads them without parsing the message. A worker
    process (`workers:` above 1) adds `"worker": N` to every line.
    """

    def __init__(self, *, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker
        self._second: tuple[int, str, str] = (-1, "", "")  # one attribute: another thread may read it meanwhile

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            data["worker"] = self.worker
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        return jsonio.dumps(data).decode()

    def format_line(self, logger: str, created: float, message: str, fields: Fields | None) -> str:
        """What `format` writes for an INFO record with these fields (`format` without a record)."""
        data: dict[str, Any] = {"time": self._time(created), "level": "INFO", "logger": logger, "message": message}
        if self.worker is not None:  # where `format` puts it: before the fields
            data["worker"] = self.worker
        if fields:
            data.update(fields)
        return jsonio.dumps(data).decode()

    def _time(self, created: float) -> str:
        """`format`'s time, with the date and time of a second made once (it is most of the cost).

        As `datetime.fromtimestamp` does, the time is rounded to the microsecond, half to even (a
        time just before a second's end is in the next one), then cut to the millisecond."""
        second = int(created)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached, date, zone = self._second
        if second != cached:
            stamp = dt.datetime.fromtimestamp(second, dt.UTC).isoformat(timespec="seconds")
            date, zone = stamp[:19], stamp[19:]
            self._second = (second, date, zone)
        return f"{date}.{micros // 1000:03d}{zone}"


class CliproxyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `setup_logging` installs (it also marks the process's logging as ours to retune).

    It writes through a buffer: a record at WARNING or above goes out at once, with everything
    before it, and the rest within `FLUSH_SECONDS`, written in one go by a small thread. A busy
    proxy logs a line per request, and one write each was most of what those lines cost.
    """

    def __init__(self, stream: TextIO, *, whole_lines: bool = False) -> None:
        super().__init__(buffered(stream, whole_lines=whole_lines))
        self._stopping = threading.Event()  # not `_closed`: `Handler.close` sets that to True
        threading.Thread(target=self._flush_now_and_then, name="cliproxy-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_lines(self, logger: str, lines: Sequence[tuple[float, str, T]], fields: Callable[[T], Fields]) -> bool:
        """Write INFO lines of `logger` (see `log_lines`) at once, each masked and formatted as `handle` would.

        False, with nothing written, when this handler has a formatter or a filter that is not ours."""
        formatter = self.formatter
        redactors = [f for f in self.filters if isinstance(f, Redactor)]
        if not isinstance(formatter, (TextFormatter, JSONFormatter)) or len(redactors) < len(self.filters):
            return False
        wants_fields = formatter.__class__ is JSONFormatter
        out = []
        for created, message, source in lines:
            line_fields = fields(source) if wants_fields else None
            for redactor in redactors:
                message, line_fields = redactor.mask_line(message, line_fields)
            out.append(formatter.format_line(logger, created, message, line_fields))
        out.append("")
        text = self.terminator.join(out)
        with self.lock:  # type: ignore[union-attr]  # every handler has one
            try:
                self.stream.write(text)
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"name": logger, "msg": text}))
        return True

    def _flush_now_and_then(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()


class WholeLineWriter(io.RawIOBase):
    """Writes to a file descriptor in pieces of whole lines of at most `PIPE_BUF` bytes.

    POSIX makes a pipe write of up to `PIPE_BUF` bytes atomic: several processes that share one
    stderr pipe (worker processes under a container runtime) then never tear each other's lines.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total, start = len(view), 0
        while start < total:
            end = min(start + select.PIPE_BUF, total)
            if end < total:  # cut after the last newline in reach, when there is one
                cut = bytes(view[start:end]).rfind(b"\n")
                end = start + cut + 1 if cut >= 0 else end
            start += os.write(self.fd, view[start:end])
        return total


def buffered(stream: TextIO, *, whole_lines: bool = False) -> TextIO:
    """A block-buffered writer on `stream`'s file descriptor (the stream itself when it has none)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    raw: BinaryIO
    if whole_lines:
        raw = io.BufferedWriter(WholeLineWriter(fd), buffer_size=LOG_BUFFER_BYTES)
    else:
        raw = open(fd, "wb", buffering=LOG_BUFFER_BYTES, closefd=False)  # noqa: SIM115 - lives as long as the handler
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=False)


def hold_early_logs() -> BufferingHandler:
    """Keep INFO+ records logged before the config (and so the log format) is known."""
    early = BufferingHandler(capacity=1000)
    root = logging.getLogger()
    root.addHandler(early)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return early


def log_formatter(log_format: str, *, worker: int | None = None) -> logging.Formatter:
    """Text or JSON lines; a worker process's lines say which worker wrote them."""
    if log_format == "json":
        return JSONFormatter(worker=worker)
    return TextFormatter(worker=worker)


def setup_logging(
    *, debug: bool = False, log_format: str = "text", early: BufferingHandler | None = None, worker: int | None = None
) -> None:
    """Configure the root logger for the process: one stderr handler (the app adds the redactor).

    Records kept by `hold_early_logs` are written through the new handler, in order. A worker
    process shares its stderr with its siblings: its lines carry its index, and its writes are
    whole lines of at most `PIPE_BUF` bytes each, so lines of two workers never interleave in a pipe.
    """
    if early is not None:
        logging.getLogger().removeHandler(early)
    handler = CliproxyHandler(sys.stderr, whole_lines=worker is not None)
    handler.setFormatter(log_formatter(log_format, worker=worker))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, CliproxyHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("asyncio", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.INFO if debug else logging.WARNING)
    if early is not None:
        for record in early.buffer:
            handler.handle(record)
        early.close()


def _owns_logging() -> bool:
    return any(isinstance(h, CliproxyHandler) for h in logging.getLogger().handlers)


def attach_redactor(redactor: Redactor) -> Callable[[], None]:
    """Put `redactor` on every root handler (tests add their own); returns what takes it off again."""
    added = [h for h in logging.getLogger().handlers if redactor not in h.filters]
    for handler in added:
        handler.addFilter(redactor)

    def detach() -> None:
        for handler in added:
            handler.removeFilter(redactor)

    return detach


def follow_runtime(redactor: Redactor) -> Callable[[Runtime, Runtime], None]:
    """The swap listener that keeps the secret set and the live `debug` level current."""

    def on_swap(old: Runtime, new: Runtime) -> None:
        redactor.update(collect_secrets(new))
        if old.config.debug != new.config.debug and _owns_logging():
            logging.getLogger().setLevel(logging.DEBUG if new.config.debug else logging.INFO)
            log.info("log level is now %s", "DEBUG" if new.config.debug else "INFO")

    return on_swap


def log_lines(logger: logging.Logger, lines: Sequence[tuple[float, str, T]], fields: Callable[[T], Fields]) -> None:
    """Log INFO lines (when, message, what `fields` makes its fields of) as `logger.info` would.

    A `CliproxyHandler` formats them all and writes them at once: a `LogRecord` per line and a
    handler's per-record work were most of what a request line cost, and the text format does not
    need the fields. Any other handler (a test's log capture, the `logging-to-file` queue) gets a
    record per line, with the fields as `record.fields`, as `extra={"fields": ...}` would give it.
    """
    if logger.disabled:
        return
    if logger.filters:  # a record each, through `Logger.handle`
        for created, message, source in lines:
            logger.handle(_line_record(logger.name, created, message, fields(source)))
        return
    others: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:  # the handlers `Logger.callHandlers` calls
        for handler in current.handlers:
            if handler.level > logging.INFO:
                continue
            if isinstance(handler, CliproxyHandler) and handler.write_lines(logger.name, lines, fields):
                continue
            others.append(handler)
        current = current.parent if current.propagate else None
    if others:
        records = [_line_record(logger.name, created, message, fields(source)) for created, message, source in lines]
        for record in records:  # the logger has no filters (see above): every record goes out
            for handler in others:
                handler.handle(record)


def _line_record(logger: str, created: float, message: str, fields: Fields) -> logging.LogRecord:
    record = logging.LogRecord(logger, logging.INFO, __file__, 0, message, None, None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    record.__dict__["fields"] = fields
    return record
