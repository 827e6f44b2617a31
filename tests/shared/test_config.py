"""`shared-state` and `workers` in the config: defaults, the load error, the masked URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliproxy.cli import main
from cliproxy.config.load import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_keep_state_in_process(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "port: 8317\n")).config
    assert config.workers == 1
    assert config.shared_state.redis_url == ""
    assert config.shared_state.key_prefix == "cliproxy:"
    assert config.shared_state.on_redis_down == "fail-closed"


def test_workers_above_one_without_redis_is_a_load_error_and_check_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "workers: 2\n")
    with pytest.raises(ConfigError, match="workers"):
        load_config(path)
    assert main(["--check", "--config", str(path)]) == 1
    assert "workers" in capsys.readouterr().err


def test_workers_with_redis_and_rediss_urls_with_passwords_load(tmp_path: Path) -> None:
    text = 'workers: 2\nshared-state:\n  redis-url: "rediss://user:s3cret-pw@redis.internal:6380/2"\n'
    config = load_config(write(tmp_path, text)).config
    assert config.workers == 2
    assert config.shared_state.password == "s3cret-pw"
    assert config.shared_state.masked_url == "rediss://user:***@redis.internal:6380/2"


def test_the_masked_url_hides_the_password_and_keeps_the_tls_query(tmp_path: Path) -> None:
    url = "rediss://:s3cret-pw@redis.internal:6380/0?ssl_ca_certs=/etc/cliproxy/redis-ca.pem&ssl_cert_reqs=required"
    config = load_config(write(tmp_path, f'shared-state:\n  redis-url: "{url}"\n')).config
    assert config.shared_state.masked_url == (
        "rediss://:***@redis.internal:6380/0?ssl_ca_certs=/etc/cliproxy/redis-ca.pem&ssl_cert_reqs=required"
    )


@pytest.mark.parametrize(
    "text",
    [
        "workers: 0\n",
        'shared-state:\n  redis-url: "http://127.0.0.1:6379"\n',
        "shared-state:\n  on-redis-down: sometimes\n",
        # a password in the query would escape masking: it belongs before the host
        'shared-state:\n  redis-url: "rediss://127.0.0.1:6380/0?password=s3cret-pw&ssl_ca_certs=/ca.pem"\n',
    ],
)
def test_bad_values_are_load_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))
