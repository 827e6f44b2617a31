"""The shape of the package, checked from its source: no import cycles, layers that only look down,
modules of a readable size, no wiring hidden in strings, comments that stand on their own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cliproxy"
MAX_LINES = 500
# Modules allowed over `MAX_LINES`, each with the reason it is one piece.
LONG_MODULES: dict[str, str] = {}
# Lower layers: they get their collaborators as arguments and know nothing of HTTP handlers.
LOWER_LAYERS = ("routing", "translate", "upstream", "credentials", "policy", "accounts")
UPPER_PACKAGES = ("cliproxy.server", "cliproxy.api", "cliproxy.management", "cliproxy.portal")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The module `name` lives in (`cliproxy.a.b.Name` → `cliproxy.a.b`), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every cliproxy module `module` imports: at the top, under TYPE_CHECKING or inside functions."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names = [prefix, *(f"{prefix}.{alias.name}" for alias in node.names)]
        for name in names:
            target = resolve(name) if name.startswith("cliproxy") else None
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles()
    details = [f"{' -> '.join(c)}: " + "; ".join(f"{m} imports {sorted(GRAPH[m] & set(c))}" for m in c) for c in found]
    assert not found, "import cycles:\n" + "\n".join(details)


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above must be able to fail: a cycle added through an existing import is found."""
    assert "cliproxy.routing.catalog" in GRAPH["cliproxy.runtime"]
    GRAPH["cliproxy.routing.catalog"].add("cliproxy.runtime")
    try:
        assert any({"cliproxy.runtime", "cliproxy.routing.catalog"} <= set(c) for c in cycles())
    finally:
        GRAPH["cliproxy.routing.catalog"].discard("cliproxy.runtime")


def test_lower_layers_never_import_the_server_handlers_or_app_state() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.split(".")[1:2] not in ([layer] for layer in LOWER_LAYERS):
            continue
        upward = sorted(t for t in GRAPH[module] if t.startswith(UPPER_PACKAGES))
        text = path.read_text()
        state = [word for word in ("AppKey", "config_dict", "request.app") if word in text]
        if upward or state:
            offenders.append(f"{module}: imports {upward}, uses {state}")
    assert not offenders, "\n".join(offenders)


def test_modules_stay_readable() -> None:
    long = {
        module: len(path.read_text().splitlines())
        for module, path in MODULES.items()
        if len(path.read_text().splitlines()) > MAX_LINES and module not in LONG_MODULES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_wiring_is_plain_imports() -> None:
    """No string registries resolved at run time: mypy and a reader see every dependency."""
    hidden = [module for module, path in MODULES.items() if re.search(r"\bimport_module\(", path.read_text())]
    assert not hidden
