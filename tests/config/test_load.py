"""Config loading: YAML-path errors, unknown-key warnings, secret hashing with comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.config.load import ConfigError, load_config, parse_config_text


def test_invalid_values_name_the_yaml_path() -> None:
    text = """
claude-api-key:
  - api-key: a
  - api-key: b
    base-url: not-a-url
routing:
  strategy: sideways
"""
    with pytest.raises(ConfigError) as info:
        parse_config_text(text)
    joined = "\n".join(info.value.errors)
    assert "claude-api-key[1].base-url: not a URL" in joined
    assert "routing.strategy: unknown strategy" in joined


def test_unknown_keys_warn_but_load() -> None:
    config, warnings, _ = parse_config_text("port: 9000\nmystery: 1\nrouting: {strategy: ff, odd: 2}\n")
    assert config.port == 9000
    assert config.routing.strategy == "fill-first"
    assert "mystery: unknown key (ignored)" in warnings
    assert "routing.odd: unknown key (ignored)" in warnings


def test_defaults_follow_cliproxyapi() -> None:
    config, _, _ = parse_config_text("")
    assert config.port == 8317
    assert config.ws_auth is True
    assert config.request_retry == 0
    assert config.routing.strategy == "round-robin"
    assert config.auth_dir == "~/.cli-proxy-api"


def test_unquoted_off_switches_the_databases_off_and_sso_roles_validate() -> None:
    config, _, _ = parse_config_text("usage-db: off\naccounts-db: off\nsso: {default-role: admin-viewer}\n")
    assert (config.usage_db, config.accounts_db, config.sso.default_role) == ("off", "off", "admin-viewer")
    with pytest.raises(ConfigError, match="default-role"):
        parse_config_text("sso: {default-role: owner}\n")


def test_plaintext_secret_is_hashed_and_written_back_keeping_comments(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# top comment\nport: 8317 # the port\nremote-management:\n  secret-key: hunter2 # secret\n")
    loaded = load_config(path)
    assert loaded.config.remote_management.secret_key.startswith("$2")
    text = path.read_text()
    assert "# top comment" in text and "# the port" in text
    assert "hunter2" not in text
    assert loaded.config.remote_management.secret_key in text


def test_a_bad_error_rule_regex_is_an_error_not_a_crash() -> None:
    text = "claude-api-key:\n  - api-key: a\n    request-scoped-errors: [{status: 400, match-regexr: ['(']}]\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text)
    (error,) = info.value.errors
    assert error.startswith("claude-api-key[0].request-scoped-errors[0].match-regexr: '(' is not a regular expression")
