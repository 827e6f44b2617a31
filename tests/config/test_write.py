"""Comment-keeping YAML edits: untouched lines survive byte for byte, comments stay where they were."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from cliproxy.config.write import (
    atomic_write_bytes,
    delete_value,
    dump_tree,
    get_value,
    guess_indent,
    load_tree,
    render,
    set_yaml_value,
    sync_value,
)
from tests.config.styled import STYLED_CONFIG


def edit(text: str, change: Any) -> str:
    tree = load_tree(text)
    change(tree)
    return render(text, tree)


def diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added)."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_cliproxyapi_style_round_trips_unchanged() -> None:
    assert dump_tree(load_tree(STYLED_CONFIG)) == STYLED_CONFIG
    assert render(STYLED_CONFIG, load_tree(STYLED_CONFIG)) == STYLED_CONFIG


def test_scalar_change_touches_one_line() -> None:
    after = set_yaml_value(STYLED_CONFIG, ("debug",), True)
    assert diff(STYLED_CONFIG, after) == (["debug: false"], ["debug: true"])
    after = set_yaml_value(STYLED_CONFIG, ("routing", "strategy"), "fill-first")
    removed, added = diff(STYLED_CONFIG, after)
    assert removed == ['  strategy: "round-robin" # round-robin (default), weighted-round-robin, fill-first']
    assert len(added) == 1 and added[0].startswith('  strategy: "fill-first"')
    assert added[0].endswith("# round-robin (default), weighted-round-robin, fill-first")


def test_append_keeps_the_comment_above_the_next_key() -> None:
    after = edit(STYLED_CONFIG, lambda t: sync_value(t, ["api-keys"], [*get_value(t, ["api-keys"]), "sk-new-0004"]))
    assert diff(STYLED_CONFIG, after) == ([], ['  - "sk-new-0004"'])
    lines = after.splitlines()
    new = lines.index('  - "sk-new-0004"')
    assert lines[new + 1 : new + 4] == ['  # - "sk-client-retired-0003"', "", "# Enable debug logging"]


def test_removing_the_last_item_keeps_following_comments() -> None:
    after = edit(STYLED_CONFIG, lambda t: sync_value(t, ["api-keys"], ["sk-client-laptop-0001"]))
    assert diff(STYLED_CONFIG, after) == (['  - "sk-client-server-0002"'], [])
    after = edit(STYLED_CONFIG, lambda t: sync_value(t, ["api-keys"], ["sk-client-server-0002"]))
    assert diff(STYLED_CONFIG, after) == (['  - "sk-client-laptop-0001" # the laptop'], [])


def test_emptying_a_list_keeps_comments() -> None:
    after = edit(STYLED_CONFIG, lambda t: sync_value(t, ["api-keys"], []))
    removed, added = diff(STYLED_CONFIG, after)
    assert removed == ["api-keys:", '  - "sk-client-laptop-0001" # the laptop', '  - "sk-client-server-0002"']
    assert added == ["api-keys: []"]
    assert "# Enable debug logging" in after and '# - "sk-client-retired-0003"' in after
    assert yaml.safe_load(after)["api-keys"] == []


def test_nested_entry_edit_keeps_its_comments() -> None:
    def change(tree: Any) -> None:
        keys = get_value(tree, ["claude-api-key"])
        keys[1]["weight"] = 7
        keys[1]["proxy-url"] = "http://proxy.local:3128"
        sync_value(tree, ["claude-api-key"], keys)

    after = edit(STYLED_CONFIG, change)
    removed, added = diff(STYLED_CONFIG, after)
    assert removed == ["    weight: 5 # optional: weighted-round-robin share; omitted defaults to 1"]
    assert added == [
        "    weight: 7 # optional: weighted-round-robin share; omitted defaults to 1",
        '    proxy-url: "http://proxy.local:3128"',
    ]


def test_deleting_an_entry_and_a_key() -> None:
    def change(tree: Any) -> None:
        sync_value(tree, ["claude-api-key"], get_value(tree, ["claude-api-key"])[:1])
        delete_value(tree, ["proxy-url"])

    after = edit(STYLED_CONFIG, change)
    removed, added = diff(STYLED_CONFIG, after)
    assert added == []
    assert removed[0] == 'proxy-url: ""'
    assert removed[1] == '  - api-key: "sk-ant-claude-0002"'
    assert "# Codex API keys" in after and "# OpenAI compatibility providers" in after
    assert "# Proxy URL. Supports socks5/http/https protocols." in after


HAND_WRITTEN = """\
---
# odd but valid formatting that ruamel would normally rewrite
api-keys:
- "a"
- b   # bee
debug:   false  # dbg
tls:
    enable: false
    cert: ''
levels: [1,2]
empty: ~
"""


def test_hand_formatting_survives_edits_elsewhere() -> None:
    assert guess_indent(HAND_WRITTEN) == (4, 0)
    after = edit(HAND_WRITTEN, lambda t: sync_value(t, ["api-keys"], ["a", "b", "c"]))
    assert diff(HAND_WRITTEN, after) == ([], ['- "c"'])
    after = edit(HAND_WRITTEN, lambda t: sync_value(t, ["tls", "cert"], "c.pem"))
    assert diff(HAND_WRITTEN, after) == (["    cert: ''"], ["    cert: 'c.pem'"])
    after = edit(HAND_WRITTEN, lambda t: sync_value(t, ["port"], 9000))
    assert diff(HAND_WRITTEN, after) == ([], ["port: 9000"])


def test_new_strings_are_quoted_so_pyyaml_reads_strings() -> None:
    after = set_yaml_value("a: 1\n", ("proxy-url",), "yes")
    assert yaml.safe_load(after) == {"a": 1, "proxy-url": "yes"}
    after = set_yaml_value("k: plain\n", ("k",), "on")
    assert yaml.safe_load(after) == {"k": "on"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a:\n  b: 1\nl:\n  - x\n", (2, 2)), ("a:\n    b: 1\nl:\n- x\n", (4, 0)), ("a: 1\n", (2, 2))],
)
def test_guess_indent(text: str, expected: tuple[int, int]) -> None:
    assert guess_indent(text) == expected


def test_failed_rename_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"old: content\n")
    os.chmod(path, 0o640)

    def broken_rename(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new: content\n", replace=broken_rename)
    assert path.read_bytes() == b"old: content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # no temp file left behind
    atomic_write_bytes(path, b"new: content\n")
    assert path.read_bytes() == b"new: content\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_windows_line_endings_are_kept() -> None:
    text = STYLED_CONFIG.replace("\n", "\r\n")
    after = set_yaml_value(text, ("debug",), True)
    assert after == text.replace("debug: false\r\n", "debug: true\r\n")
