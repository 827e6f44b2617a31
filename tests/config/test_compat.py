"""CLIProxyAPI configs load unchanged; config.example.yaml documents every key; `--check` exits 0/1."""

from __future__ import annotations

import re
import shutil
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from cliproxy.cli import main
from cliproxy.config.load import load_config, parse_config_text
from cliproxy.config.model import CLIPROXYAPI_KEYS, Config

FIXTURE = Path(__file__).parent / "fixtures" / "cliproxyapi_example.yaml"
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def schema_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every YAML key path of the schema, e.g. `claude-api-key.cloak.mode`."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        yield path
        stack: list[typing.Any] = [info.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from schema_paths(annotation, path + ".")
            else:
                stack.extend(typing.get_args(annotation))


def test_cliproxyapi_example_loads_with_no_errors_and_no_warnings() -> None:
    config, warnings, _ = parse_config_text(FIXTURE.read_text())
    assert warnings == []
    assert config.port == 8317 and config.host == ""
    assert config.request_retry == 3 and config.max_retry_interval == 30
    assert config.uses_template_keys  # the example's keys put the proxy in safe mode
    assert config.routing.session_affinity_subagents is True
    claude = config.claude_api_key[1]
    assert claude.cloak is not None and claude.cloak.cache_user_id is True
    assert claude.cloak.relaxed_system_prompt is False
    compat = config.openai_compatibility[0]
    assert [e.api_key for e in compat.api_key_entries] == ["sk-or-v1-...b780", "sk-or-v1-...b781"]
    assert [m.name for m in compat.models if m.alias == "claude-opus-4.66"] == ["deepseek-v3.1", "glm-5", "kimi-k2.5"]
    assert compat.models[0].input_modalities == ("text", "image")
    assert config.gemini_api_key[0].request_scoped_errors[0].match_regexr == (
        "maximum_context_length$",
        "^context_length_exceeded",
    )
    assert config.oauth_model_alias["antigravity"][0].fork is True
    assert config.oauth_request_scoped_errors["antigravity"][0].action == "stop-and-cooldown"
    assert set(config.payload) == {"default", "default-raw", "override", "override-raw", "filter"}


def test_cliproxyapi_example_file_is_left_unchanged_by_loading(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    shutil.copy(FIXTURE, path)
    before = path.read_bytes()
    loaded = load_config(path)
    assert loaded.warnings == ()
    assert path.read_bytes() == before  # empty secret-key: nothing to hash, nothing written


def test_config_example_loads_cleanly() -> None:
    config, warnings, _ = parse_config_text(EXAMPLE.read_text())
    assert warnings == []
    assert config.port == 8317


def test_config_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = []
    for path in schema_paths(Config):
        leaf = path.rsplit(".", 1)[-1]
        top_level = "." not in path
        pattern = rf"^(# )?{re.escape(leaf)}:" if top_level else rf"^\s*#?\s*(- )?{re.escape(leaf)}:"
        if not re.search(pattern, text, re.MULTILINE):
            missing.append(path)
    assert missing == []
    for key in CLIPROXYAPI_KEYS:
        assert re.search(rf"\b{re.escape(key)}\b", text), key


def test_check_exits_0_on_a_good_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--config", str(FIXTURE)]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith(": ok")
    assert err == ""


def test_check_exits_1_with_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 70000\nclaude-api-key:\n  - base-url: ftp://x\nrouting: {strategy: sideways}\nodd: 1\n")
    assert main(["--check", "--config", str(path)]) == 1
    _, err = capsys.readouterr()
    assert "error: port: " in err
    assert "error: claude-api-key[0].base-url: not a URL" in err
    assert "error: routing.strategy: unknown strategy" in err


def test_check_warns_on_unknown_keys_but_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 8317\nmystery: 1\n")
    assert main(["--check", "--config", str(path)]) == 0
    _, err = capsys.readouterr()
    assert "warning: mystery: unknown key (ignored)" in err


def test_check_of_a_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err
    assert not (tmp_path / "nope.yaml").exists()  # --check never generates a config


def test_check_opens_the_tls_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--check` fails on what would stop the server: a TLS file that is missing or not a certificate."""
    from tests.server.test_process import self_signed

    cert, key = self_signed(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(f"tls:\n  enable: true\n  cert: {cert}\n  key: {key}\n")
    assert main(["--check", "--config", str(path)]) == 0
    path.write_text(f"tls:\n  enable: true\n  cert: {cert}\n  key: {tmp_path / 'gone.pem'}\n")
    assert main(["--check", "--config", str(path)]) == 1
    assert "error: tls.key: file not found: " in capsys.readouterr().err
    path.write_text(f"tls:\n  enable: true\n  cert: {key}\n  key: {key}\n")  # a key is not a certificate
    assert main(["--check", "--config", str(path)]) == 1
    assert "error: tls: cannot load the certificate and key" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name", ["Content-Length", "transfer-encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer"]
)
def test_framing_headers_under_headers_are_a_load_error(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HTTP client writes the framing itself: a second value would make the request ambiguous."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "claude-api-key:\n  - api-key: sk-a\n    headers: {X-Fine: fine}\n"
        f"openai-compatibility:\n  - name: p\n    base-url: http://127.0.0.1:1/v1\n    headers: {{{name}: '9'}}\n"
    )
    assert main(["--check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"error: openai-compatibility[0].headers: {name} cannot be set here" in err


def test_upstream_timeouts_and_the_cooldown_cap_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "max-cooldown-seconds: 0\nupstream-timeouts: {idle-seconds: -1}\n"
        "gemini-api-key:\n  - api-key: g\n    upstream-timeouts: {first-byte-seconds: nope}\n"
    )
    assert main(["--check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: max-cooldown-seconds: " in err
    assert "error: upstream-timeouts.idle-seconds: " in err
    assert "error: gemini-api-key[0].upstream-timeouts.first-byte-seconds: " in err
