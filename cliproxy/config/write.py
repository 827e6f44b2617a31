"""Safe config writes: edit the YAML as a tree (comments and key order kept), replace atomically.

`atomic_write_bytes` is the only way cliproxy replaces a file that matters: a temp file in the
same directory, fsync, rename over the target, permissions of the old file kept. A crash at any
point leaves either the old file or the new one, never a half-written file.

Editing goes through ruamel's round-trip tree, which keeps comments, order and quoting but
re-emits every line in one house style. Two things make untouched lines survive byte for byte:

* the emitter is configured with the file's own indentation (`guess_indent`), and
* `render` runs a three-way merge: lines the edit did not touch are taken from the original
  text, lines it changed come from ruamel. If the merged text does not parse to the same data as
  ruamel's output, ruamel's output is used as is (never a wrong file, at worst a reformatted one).

`sync_value` applies plain Python data (what a handler computed) to the tree with the smallest
change, and moves the comment lines ruamel attaches to "the last item before them" so a comment
above the next key stays above that key when an item is appended or removed.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import io
import itertools
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString
from ruamel.yaml.tokens import CommentToken

log = logging.getLogger(__name__)

Replace = Callable[[str | os.PathLike[str], str | os.PathLike[str]], None]


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None, replace: Replace = os.replace) -> None:
    """Replace `path` with `data` atomically; keep the old file's mode unless `mode` is given.

    `replace` is the final rename (tests inject a failing one to show the old file survives).
    A symlink is followed: its target is replaced and the link stays (dotfile setups).
    """
    if path.is_symlink():
        path = path.resolve()
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o600  # a new file: configs and credentials hold keys
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        replace(tmp, path)
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


def atomic_write_text(path: Path, text: str, *, mode: int | None = None, replace: Replace = os.replace) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode, replace=replace)


# --------------------------------------------------------------------------- round-trip tree

_KEY_LINE = re.compile(r"^(\s*)[^\s#-][^#]*:\s*(#.*)?$")
_SEQ_LINE = re.compile(r"^(\s*)- ")


def guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) the file uses; CLIProxyAPI's (2, 2) when unknown."""
    mapping: int | None = None
    offset: int | None = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for prev, line in itertools.pairwise(lines):
        head = _KEY_LINE.match(prev)
        if head is None:
            continue
        parent = len(head.group(1))
        child = len(line) - len(line.lstrip(" "))
        if _SEQ_LINE.match(line):
            if offset is None and child >= parent:
                offset = child - parent
        elif mapping is None and child > parent:
            mapping = child - parent
        if mapping is not None and offset is not None:
            break
    return mapping or 2, 2 if offset is None else offset


def round_trip_yaml(mapping: int = 2, offset: int = 2) -> YAML:
    """A ruamel YAML instance that keeps comments, order and quoting, in the given indentation."""
    yml = YAML(typ="rt")
    yml.preserve_quotes = True
    yml.width = 4096
    yml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yml


def load_tree(text: str) -> Any:
    text = text.replace("\r\n", "\n")
    return round_trip_yaml().load(text) if text.strip() else None


def dump_tree(tree: Any, *, mapping: int = 2, offset: int = 2) -> str:
    buf = io.StringIO()
    round_trip_yaml(mapping, offset).dump(tree, buf)
    return buf.getvalue()


def merge3(base: list[str], ours: list[str], theirs: list[str]) -> list[str]:
    """Three-way merge of lines: `ours` = formatting changes of `base`, `theirs` = content changes.

    Where only one side differs from `base`, that side wins; where both differ, `theirs` wins
    (the edit must happen, in ruamel's formatting).
    """

    def mapping(other: list[str]) -> dict[int, int]:
        matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
        out: dict[int, int] = {}
        for block in matcher.get_matching_blocks():
            for n in range(block.size):
                out[block.a + n] = block.b + n
        return out

    to_ours, to_theirs = mapping(ours), mapping(theirs)
    anchors = [(i, to_ours[i], to_theirs[i]) for i in range(len(base)) if i in to_ours and i in to_theirs]
    anchors.append((len(base), len(ours), len(theirs)))
    out: list[str] = []
    b0 = o0 = t0 = 0
    for b1, o1, t1 in anchors:
        if o1 < o0 or t1 < t0:  # not monotonic (cannot happen with matching blocks); be safe
            continue
        base_chunk, our_chunk, their_chunk = base[b0:b1], ours[o0:o1], theirs[t0:t1]
        if our_chunk in (base_chunk, their_chunk):
            out.extend(their_chunk)
        elif their_chunk == base_chunk:
            out.extend(our_chunk)
        elif len(our_chunk) == len(base_chunk):
            # Both changed, but ours only reformatted line for line: keep our spelling of every
            # base line that theirs kept, take theirs' new lines.
            matcher = difflib.SequenceMatcher(None, base_chunk, their_chunk, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                out.extend(our_chunk[i1:i2] if tag == "equal" else their_chunk[j1:j2])
        else:
            out.extend(their_chunk)
        if b1 < len(base):
            out.append(ours[o1])
        b0, o0, t0 = b1 + 1, o1 + 1, t1 + 1
    return out


def _same_data(a: str, b: str) -> bool:
    try:
        return bool(yaml.safe_load(a) == yaml.safe_load(b))
    except yaml.YAMLError:
        return False


def render(original: str, tree: Any) -> str:
    """The edited tree as text, with every line the edit did not touch kept from `original`.

    `tree` must come from `load_tree(original)`. A file saved with Windows line endings keeps them.
    """
    if "\r\n" in original:
        return _render(original.replace("\r\n", "\n"), tree).replace("\n", "\r\n")
    return _render(original, tree)


def _render(original: str, tree: Any) -> str:
    mapping, offset = guess_indent(original)
    theirs = dump_tree(tree, mapping=mapping, offset=offset)
    if not original.strip():
        return theirs
    base = dump_tree(round_trip_yaml().load(original), mapping=mapping, offset=offset)
    if base == original:
        return theirs
    merged = "".join(merge3(base.splitlines(True), original.splitlines(True), theirs.splitlines(True)))
    if _same_data(merged, theirs):
        return merged
    log.warning("config edit: line-preserving merge did not round-trip; writing ruamel's formatting instead")
    return theirs


# --------------------------------------------------------------------------- plain data -> tree

_PLAIN_SAFE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+-]*$")
_YAML11_SPECIAL = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"})


def to_plain(node: Any) -> Any:
    """A ruamel subtree as plain JSON-like Python data (deep copy)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def build_node(value: Any, like: Any = None) -> Any:
    """A new tree node for plain `value`; strings quoted like the old value `like`, else double-quoted."""
    if isinstance(value, dict):
        node = CommentedMap()
        for k, v in value.items():
            node[k] = build_node(v)
        return node
    if isinstance(value, list | tuple):
        seq = CommentedSeq(build_node(v) for v in value)
        seq.fa.set_block_style()
        return seq
    if isinstance(value, str):
        if isinstance(like, ScalarString):
            return type(like)(value)
        if isinstance(like, str) and _PLAIN_SAFE.match(value) and value.lower() not in _YAML11_SPECIAL:
            return value
        return DoubleQuotedScalarString(value)
    return value


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and len(node) > 0 and not node.fa.flow_style()


def _deepest(container: Any, key: Any) -> tuple[Any, Any]:
    """The position whose comment slot holds the lines that follow the value at (container, key)."""
    value = container[key]
    while _is_block(value):
        container, key = value, (next(reversed(value)) if isinstance(value, CommentedMap) else len(value) - 1)
        value = container[key]
    return container, key


def _slot(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def take_tail(container: Any, key: Any) -> str:
    """Detach the full-line comments and blank lines that follow the value at (container, key)."""
    c, k = _deepest(container, key)
    entry = c.ca.items.get(k)
    token = entry[_slot(c)] if entry else None
    if token is None:
        return ""
    head, newline, tail = token.value.partition("\n")
    if not tail:
        return ""
    if head.strip():
        token.value = head + newline
    else:
        entry[_slot(c)] = None
    return str(tail)


def put_tail(container: Any, key: Any, tail: str) -> None:
    """Attach comment lines after the value at (container, key) (inverse of `take_tail`)."""
    if not tail:
        return
    c, k = _deepest(container, key)
    entry = c.ca.items.setdefault(k, [None, None, None, None])
    slot = _slot(c)
    token = entry[slot]
    if token is None:
        entry[slot] = CommentToken("\n" + tail, CommentMark(0), None)
    else:
        value = token.value if token.value.endswith("\n") else token.value + "\n"
        token.value = value + tail


def _add_pre_comment(container: Any, key: Any, text: str) -> None:
    """Comment lines to print before the first item of the collection at (container, key)."""
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    lines = [line for line in text.splitlines(True)]
    tokens = entry[3] if isinstance(entry[3], list) else []
    tokens.extend(CommentToken(line, CommentMark(0), None) for line in lines if line.strip())
    entry[3] = tokens or None


def _set_child(container: Any, key: Any, new: Any) -> str:
    """Make container[key] equal plain `new` in place; returns orphaned comment lines ('' normally)."""
    old = container[key]
    if _canon(to_plain(old)) == _canon(new):
        return ""
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        return _sync_map(old, new, container, key)
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        return _sync_seq(old, new, container, key)
    tail = take_tail(container, key) if _is_block(old) else ""
    if isinstance(container, CommentedSeq):
        list.__setitem__(container, key, build_node(new, old))
    else:
        container[key] = build_node(new, old)
    put_tail(container, key, tail)
    return ""


def _remove(container: Any, key: Any, position: int) -> str:
    """Delete one item, keeping the comment lines that followed it. Returns what has no home left."""
    tail = take_tail(container, key)
    if isinstance(container, CommentedMap):
        container.ca.items.pop(key, None)
    del container[key]
    if not tail:
        return ""
    if position > 0:
        prev = list(container.keys())[position - 1] if isinstance(container, CommentedMap) else position - 1
        put_tail(container, prev, tail)
        return ""
    return tail


def _insert(container: Any, position: int, key: Any, value: Any) -> None:
    """Insert a new item; the comment lines that followed its predecessor now follow it."""
    node = build_node(value)
    prev: Any = None
    if position > 0:
        prev = list(container.keys())[position - 1] if isinstance(container, CommentedMap) else position - 1
    tail = take_tail(container, prev) if prev is not None else ""
    if isinstance(container, CommentedMap):
        container.insert(position, key, node)
        put_tail(container, key, tail)
    else:
        container.insert(position, node)
        put_tail(container, position, tail)


def _finish(node: Any, orphan: str, parent: Any, parent_key: Any) -> str:
    """Place comment lines left without an owner; an emptied collection becomes `[]` / `{}`."""
    if not len(node):
        node.ca.items.clear()
        node.ca.comment = None
        node.fa.set_flow_style()
        if orphan and parent is not None:
            put_tail(parent, parent_key, orphan)
            return ""
        return orphan
    if orphan and isinstance(parent, CommentedMap):
        _add_pre_comment(parent, parent_key, orphan)
        return ""
    return orphan


def _sync_map(node: CommentedMap, new: dict[str, Any], parent: Any = None, parent_key: Any = None) -> str:
    orphan = ""
    for key in [k for k in node if k not in new]:
        orphan += _remove(node, key, list(node.keys()).index(key))
    for i, (key, value) in enumerate(new.items()):
        if key in node:
            orphan += _set_child(node, key, value)
            continue
        predecessors = [k for k in list(new)[:i] if k in node]
        position = list(node.keys()).index(predecessors[-1]) + 1 if predecessors else len(node)
        _insert(node, position, key, value)
    return _finish(node, orphan, parent, parent_key)


def _sync_seq(node: CommentedSeq, new: list[Any], parent: Any = None, parent_key: Any = None) -> str:
    old_keys = [_canon(to_plain(v)) for v in node]
    new_keys = [_canon(v) for v in new]
    opcodes = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False).get_opcodes()
    orphan = ""
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for n in range(pairs):
            orphan += _set_child(node, i1 + n, new[j1 + n])
        for i in range(i2 - 1, i1 + pairs - 1, -1):
            orphan += _remove(node, i, i)
        for n, j in enumerate(range(j1 + pairs, j2)):
            _insert(node, i1 + pairs + n, None, new[j])
    return _finish(node, orphan, parent, parent_key)


def sync_value(tree: CommentedMap, path: Sequence[str], value: Any) -> None:
    """Set the value at `path` (mapping keys) to plain `value`, creating parents, changing little."""
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, CommentedMap):
            _set_child(node, key, {}) if key in node else _insert(node, len(node), key, {})
            child = node[key]
        node = child
    key = path[-1]
    if key in node:
        _set_child(node, key, value)
    else:
        _insert(node, len(node), key, value)


def delete_value(tree: CommentedMap, path: Sequence[str]) -> bool:
    """Remove the key at `path`; False when it was not there."""
    node: Any = tree
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, CommentedMap) else None
    if not isinstance(node, CommentedMap) or path[-1] not in node:
        return False
    keys = list(node.keys())
    _remove(node, path[-1], keys.index(path[-1]))
    return True


def get_value(tree: Any, path: Sequence[str], default: Any = None) -> Any:
    """Plain copy of the value at `path`, or `default`."""
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return to_plain(node)


def set_yaml_value(text: str, keys: Sequence[str], value: Any) -> str:
    """Return `text` with the mapping value at `keys` replaced (created if missing)."""
    tree = load_tree(text)
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    sync_value(tree, keys, value)
    return render(text, tree)


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive `flock` on `directory` (blocking; call it off the event loop): processes that
    read, change and replace files in one directory (worker processes) take turns. A directory that
    cannot be opened is not locked: the write then fails or succeeds on its own."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
