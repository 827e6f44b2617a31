"""Property: any sequence of edits through `sync_value` yields exactly the intended data, and the
original comments are still there, in order (they move with content, never vanish)."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy.config.write import load_tree, render, sync_value
from tests.config.styled import STYLED_CONFIG

BASE = yaml.safe_load(STYLED_CONFIG)
LIST_KEYS = ["api-keys", "claude-api-key", "gemini-api-key", "openai-compatibility"]
SCALAR_PATHS = [("debug",), ("request-retry",), ("proxy-url",), ("routing", "strategy"), ("tls", "cert")]

text_values = st.text(alphabet="abcxyz-_/.:# '\"", min_size=0, max_size=12)
scalars = st.one_of(st.booleans(), st.integers(-5, 10**6), text_values)


def comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.lstrip().startswith("#")]


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["scalar", "append", "remove", "edit-entry"]))
        if kind == "scalar":
            out.append((kind, draw(st.sampled_from(SCALAR_PATHS)), draw(scalars)))
        else:
            out.append((kind, draw(st.sampled_from(LIST_KEYS)), draw(st.integers(0, 5))))
    return out


def apply(data: dict[str, Any], edit: tuple[str, Any, Any], n: int) -> tuple[tuple[str, ...], Any]:
    kind, target, arg = edit
    if kind == "scalar":
        node = data
        for key in target[:-1]:
            node = node.setdefault(key, {})
        node[target[-1]] = arg
        return (target[0],), data[target[0]]
    items = data.setdefault(target, []) or []
    data[target] = items
    if kind == "append":
        items.insert(min(arg, len(items)), f"new-{n}" if target == "api-keys" else {"api-key": f"new-{n}"})
    elif kind == "remove" and items:
        del items[arg % len(items)]
    elif kind == "edit-entry" and items and isinstance(items[arg % len(items)], dict):
        items[arg % len(items)]["weight"] = n
    return (target,), items


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits())
def test_edits_give_intended_data_and_keep_comments(plan: list[tuple[str, Any, Any]]) -> None:
    expected = copy.deepcopy(BASE)
    tree = load_tree(STYLED_CONFIG)
    for n, edit in enumerate(plan):
        path, value = apply(expected, edit, n)
        sync_value(tree, path, copy.deepcopy(value))
    text = render(STYLED_CONFIG, tree)
    assert yaml.safe_load(text) == expected
    if not any(kind == "remove" for kind, _, _ in plan):
        assert comment_lines(text) == comment_lines(STYLED_CONFIG)
        for comment in eol_comments(STYLED_CONFIG):  # end-of-line comments too
            assert text.count(comment) >= STYLED_CONFIG.count(comment), comment
    else:
        # A removed entry takes the comments inside it along; top-level comments always stay.
        assert top_level_comments(text) == top_level_comments(STYLED_CONFIG)


def eol_comments(text: str) -> list[str]:
    return [
        "# " + line.split(" # ", 1)[1]
        for line in text.splitlines()
        if " # " in line and not line.lstrip().startswith("#")
    ]


def top_level_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]
