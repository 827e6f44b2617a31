"""The one way the management API changes `config.yaml`.

Every change goes through `ConfigWriter` (on the app as `CONFIG_WRITER`), which holds one lock so
concurrent writes are applied one after another, each on the file as the previous one left it:

1. read the file and load ruamel's round-trip tree;
2. let the caller mutate it (`ConfigDoc`: plain Python data in and out; a caller may raise an
   HTTP error to abort, and the file is untouched);
3. render it so every untouched line keeps its exact bytes (`config.write.render`);
4. validate the new text with the same loader the server uses (422 `invalid_config` on failure);
5. replace the file atomically in a worker thread (temp file, fsync, rename; mode kept);
6. rebuild and swap the runtime, so the change is live when the response is sent.

A failure at step 5 (even at the rename) leaves the old file byte for byte. Steps 1 to 5 also
hold an exclusive `flock` on the config's directory, so that worker processes (`workers:` above
1), each with its own `ConfigWriter`, never lose each other's changes; the others then reload
through their file watchers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from ruamel.yaml.comments import CommentedMap

from cliproxy.config.load import ConfigError, parse_config_text
from cliproxy.config.write import (
    Replace,
    atomic_write_text,
    delete_value,
    directory_lock,
    get_value,
    load_tree,
    render,
    sync_value,
)
from cliproxy.management.http import api_error
from cliproxy.watch import Reloader

log = logging.getLogger(__name__)

T = TypeVar("T")
Path_ = str | Sequence[str]


def _keys(path: Path_) -> tuple[str, ...]:
    return tuple(path.split("/")) if isinstance(path, str) else tuple(path)


class ConfigDoc:
    """The config file as an editable tree, for the duration of one write."""

    def __init__(self, tree: CommentedMap) -> None:
        self.tree = tree

    def get(self, path: Path_, default: Any = None) -> Any:
        """A plain (deep-copied) value; `routing/strategy` and ("routing", "strategy") both work."""
        return get_value(self.tree, _keys(path), default)

    def set(self, path: Path_, value: Any) -> None:
        """Set plain `value`, changing as few nodes (and so as few lines) as possible."""
        sync_value(self.tree, _keys(path), value)

    def delete(self, path: Path_) -> bool:
        return delete_value(self.tree, _keys(path))


def invalid_config(errors: Sequence[str]) -> web.HTTPException:
    """422 with the loader's lines joined in `message`, and each as `{"path", "message"}` in `errors`
    (the panel's YAML editor lists them)."""
    return api_error(422, "invalid_config", message="; ".join(errors), errors=[error_parts(e) for e in errors])


def error_parts(error: str) -> dict[str, str]:
    """`claude-api-key[1].base-url: not a URL` → path and message (no path: the whole line)."""
    path, sep, message = error.partition(": ")
    if not sep or " " in path.strip():
        return {"path": "", "message": error}
    return {"path": path, "message": message}


class ConfigWriter:
    """Serialised, validated, atomic, comment-keeping config writes (see the module docstring)."""

    def __init__(self, reloader: Reloader, *, replace: Replace = os.replace) -> None:
        self._reloader = reloader
        self._replace = replace
        self.lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._reloader.holder.current.config_path

    async def update(self, mutate: Callable[[ConfigDoc], T]) -> T:
        """Apply `mutate` to the current file; returns what `mutate` returned.

        Parsing, the mutation, rendering and validation are CPU work (tens of milliseconds for a
        large file), so they run in a worker thread; `mutate` must only touch the document.
        """
        async with self.lock:
            path = self.path
            result, changed = await self._under_file_lock(path, lambda: self._edit_and_write(path, mutate))
            if changed:
                await self._written(path)
            return result

    async def replace_text(self, text: str) -> None:
        """Replace the whole file with `text` (already YAML-checked by the caller) after validation."""
        async with self.lock:
            path = self.path

            def validate_and_write() -> None:
                _validate(path, text)
                atomic_write_text(path, text, replace=self._replace)

            await self._under_file_lock(path, validate_and_write)
            await self._written(path)

    async def reload(self) -> None:
        """Rebuild the runtime now (after an auth-dir change) so the change is live on return."""
        await self._reloader.reload_now()

    def _edit_and_write(self, path: Path, mutate: Callable[[ConfigDoc], T]) -> tuple[T, bool]:
        result, text, changed = self._edit(path, mutate)
        if changed:
            atomic_write_text(path, text, replace=self._replace)
        return result, changed

    @staticmethod
    async def _under_file_lock(path: Path, work: Callable[[], T]) -> T:
        """`work` in a worker thread, holding the directory lock; a failed write is a 500."""

        def locked() -> T:
            with directory_lock(path.parent):
                return work()

        try:
            return await asyncio.to_thread(locked)
        except OSError as exc:
            log.error("config write to %s failed: %s", path, exc.strerror or exc)
            raise api_error(500, f"failed to save config: {exc.strerror or exc}") from None

    @staticmethod
    def _edit(path: Path, mutate: Callable[[ConfigDoc], T]) -> tuple[T, str, bool]:
        original = _read_text(path)
        try:
            tree = load_tree(original)
        except Exception as exc:  # the file on disk is broken (edited by hand): refuse to guess
            raise invalid_config([f"{path.name}: cannot parse the current file: {exc}"]) from None
        if tree is None:
            tree = CommentedMap()
        if not isinstance(tree, CommentedMap):
            raise invalid_config([f"{path.name}: the top level must be a mapping"])
        result = mutate(ConfigDoc(tree))
        text = render(original, tree)
        if text == original:
            return result, text, False
        _validate(path, text)
        return result, text, True

    async def _written(self, path: Path) -> None:
        log.info("config written to %s via the management API", path.name)
        status = await self._reloader.reload_now()
        if not status.ok:  # validated above; only a concurrent hand edit can get here
            raise invalid_config([status.message])


def _validate(path: Path, text: str) -> None:
    try:
        parse_config_text(text, source=path.name)
    except ConfigError as exc:
        raise invalid_config(exc.errors) from None


def _read_text(path: Path) -> str:
    """The file an edit starts from. A missing file is an error, not an empty config: an edit of
    nothing would write a file without `api-keys` or the management secret, an open proxy."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise api_error(
            500, f"failed to save config: {path.name} not found (restore it, or PUT /config.yaml)"
        ) from None


CONFIG_WRITER = web.AppKey("config_writer", ConfigWriter)  # on the root app, read through config_dict


def config_writer(request: web.Request) -> ConfigWriter:
    return request.config_dict[CONFIG_WRITER]
