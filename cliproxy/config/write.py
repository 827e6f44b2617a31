"""Safe config writes: edit the YAML as a tree (comments and key order kept), replace atomically.

`atomic_write_text` is the only way cliproxy replaces a file that matters: a temp file in the
same directory, fsync, rename over the target, permissions of the old file kept. A crash at any
point leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically; keep the old file's mode unless `mode` is given."""
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def round_trip_yaml() -> YAML:
    """A ruamel YAML instance that keeps comments, order and quoting."""
    yml = YAML(typ="rt")
    yml.preserve_quotes = True
    yml.width = 4096
    yml.indent(mapping=2, sequence=4, offset=2)
    return yml


def load_tree(text: str) -> Any:
    return round_trip_yaml().load(text) if text.strip() else None


def dump_tree(tree: Any) -> str:
    buf = io.StringIO()
    round_trip_yaml().dump(tree, buf)
    return buf.getvalue()


def set_yaml_value(text: str, keys: Sequence[str], value: Any) -> str:
    """Return `text` with the mapping value at `keys` replaced (created if missing)."""
    from ruamel.yaml.comments import CommentedMap

    tree = load_tree(text)
    if tree is None:
        tree = CommentedMap()
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = CommentedMap()
            node[key] = child
        node = child
    node[keys[-1]] = value
    return dump_tree(tree)
