"""No key does nothing silently: every key of config.example.yaml (commented examples included) is
implemented, or listed in `COMPAT_ONLY_KEYS` and reported when set, at load, by `--check` and in
`reload-status`."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from pydantic import BaseModel

from cliproxy.cli import main
from cliproxy.config.compat_only import COMPAT_ONLY_KEYS, compat_only_warnings
from cliproxy.config.load import load_config
from cliproxy.config.model import Config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
# Keys the schema does not declare that code reads from `model_extra` by name.
READ_FROM_EXTRA = {"redis-usage-queue-retention-seconds"}
_COMMENTED_KEY = re.compile(r"^(\s*)# ?(\s*(?:- )?[a-z0-9-]+:(?:\s|$).*)$")


def example_with_comments_opened() -> Any:
    """config.example.yaml with its commented-out example blocks turned into YAML."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        match = _COMMENTED_KEY.match(line)
        lines.append(match.group(1) + match.group(2) if match else line)
    return yaml.safe_load("\n".join(lines))


def key_paths(node: Any, where: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            yield path
            yield from key_paths(value, path)
    elif isinstance(node, list):
        for item in node:
            yield from key_paths(item, where + "[]")


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            yield item
        else:
            stack.extend(typing.get_args(item))


def in_schema(path: str) -> bool:
    """Whether a YAML path names a key of the schema (a mapping's own keys, `oauth-model-alias.claude`, too)."""
    from cliproxy.config.sections import ProviderKey

    parts = [p.removesuffix("[]") for p in path.split(".")]
    if parts[0].endswith("-api-key") and parts[0] not in {i.alias for i in Config.model_fields.values()}:
        parts[0:1] = []  # an undeclared `*-api-key` section is a list of ProviderKey
        return _in_model(ProviderKey, parts)
    return _in_model(Config, parts)


def _in_model(model: type[BaseModel], parts: list[str]) -> bool:
    if not parts:
        return True
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    info = fields.get(parts[0])
    if info is None:
        return False
    rest = parts[1:]
    if typing.get_origin(info.annotation) is dict and rest:
        rest = rest[1:]  # the mapping's own key
    if not rest:
        return True
    return any(_in_model(nested, rest) for nested in _models_in(info.annotation))


def compat_only(path: str) -> bool:
    """Whether `path` (with or without `[]`) is a compatibility-only key or lies under one."""
    plain = path.replace("[]", "")
    for pattern in COMPAT_ONLY_KEYS:
        regex = r"\.".join("[^.]+" if seg == "*" else re.escape(seg) for seg in pattern.replace("[]", "").split("."))
        if re.fullmatch(regex, plain) or re.match(regex + r"\.", plain):
            return True
    return False


def test_every_key_of_the_example_is_implemented_or_reported() -> None:
    example = example_with_comments_opened()
    silent = []
    for path in sorted(set(key_paths(example))):
        if compat_only(path) or path.split(".")[0] in READ_FROM_EXTRA:
            continue
        if path.startswith("payload."):  # the rules' own structure, read by translate/payload.py
            continue
        if not in_schema(path):
            silent.append(path)
    assert silent == [], f"keys neither implemented nor in COMPAT_ONLY_KEYS: {silent}"


def _source() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "cliproxy").rglob("*.py") if p.parent.name != "config")


def _schema_fields(model: type[BaseModel], where: str = "") -> Iterator[tuple[str, str]]:
    for name, info in model.model_fields.items():
        path = f"{where}.{info.alias or name}" if where else info.alias or name
        yield path, name
        for nested in _models_in(info.annotation):
            yield from _schema_fields(nested, path)


def test_every_schema_field_is_read_somewhere_or_reported() -> None:
    """A field the code never reads is a key that silently does nothing (unless it is listed)."""
    source = _source()
    unread = []
    for path, name in _schema_fields(Config):
        if compat_only(path):
            continue
        if path.endswith("-api-key") and re.search(re.escape(path), source):  # sections found by YAML name
            continue
        if not re.search(rf"\b{name}\b", source):
            unread.append(path)
    assert unread == [], f"schema fields nothing reads: {unread}"


def test_compat_only_keys_are_reported_only_when_set() -> None:
    raw = {
        "pprof": {"enable": False, "addr": ""},
        "commercial-mode": True,
        "remote-management": {"disable-control-panel": False, "panel-github-repository": "x/y"},
        "openai-compatibility": [{"name": "a", "models": [{"name": "m", "image": True, "is-compat": False}]}],
    }
    lines = compat_only_warnings(raw)
    assert [line.split(":", 1)[0] for line in lines] == [
        "commercial-mode",
        "remote-management.panel-github-repository",
        "openai-compatibility[0].models[0].image",
    ]
    assert all("no effect in cliproxy" in line for line in lines)


def test_check_and_load_report_compat_only_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("commercial-mode: true\nkiro:\n  enabled: true\n")
    assert load_config(path).compat_only == (
        "commercial-mode: accepted for CLIProxyAPI compatibility, no effect in cliproxy "
        "(cliproxy has no commercial mode)",
        "kiro: accepted for CLIProxyAPI compatibility, no effect in cliproxy (cliproxy has no Kiro provider)",
    )
    assert main(["--check", "--config", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "warning: commercial-mode: accepted for CLIProxyAPI compatibility" in out
    assert "warning: kiro: accepted" in out and out.strip().endswith(": ok")


async def test_reload_status_lists_the_compat_only_keys(
    tmp_path: Path, aiohttp_server: typing.Callable[..., typing.Awaitable[TestServer]]
) -> None:
    from tests.conftest import app_from_config, write_config

    secret = "mgmt-secret-for-warnings"
    config = write_config(tmp_path, f"remote-management:\n  secret-key: {secret}\npprof:\n  enable: true\n")
    server = await aiohttp_server(app_from_config(config))
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/v0/management/reload-status"), headers={"X-Management-Key": secret}) as r,
    ):
        body = await r.json()
    assert r.status == 200
    assert body["message"] == (
        "initial load; 1 warning(s): pprof: accepted for CLIProxyAPI compatibility, no effect in cliproxy "
        "(cliproxy has no pprof server)"
    )
