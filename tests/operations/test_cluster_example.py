"""`deploy/cluster/`: the documented example of two instances, Redis and nginx is consistent.

No container engine is needed: the compose file parses, everything it mounts or builds exists, its
instances share what must be shared and keep apart what must not, nginx forwards to exactly those
instances with streaming-friendly settings, and the config they share loads with cliproxy's own
loader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from cliproxy.config.load import parse_config_text

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "deploy" / "cluster"
INSTANCES = ("cliproxy-a", "cliproxy-b")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CLUSTER / "compose.yaml").read_text())
    return loaded


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → source (a `./` path or a named volume), `:ro` dropped."""
    out = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        out[target] = source
    return out


def test_the_compose_file_runs_two_instances_redis_with_aof_and_nginx() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", *INSTANCES, "nginx"}
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"  # budgets survive a Redis restart
    assert "/data" in mounts(services["redis"])


def test_everything_the_compose_file_builds_or_mounts_exists() -> None:
    spec = compose()
    declared = set(spec["volumes"])
    for name, service in spec["services"].items():
        if "build" in service:
            assert (CLUSTER / service["build"] / "Dockerfile").is_file(), name
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (CLUSTER / source).exists(), (name, source)
            else:
                assert source in declared, (name, source, target)


def test_instances_share_config_auth_files_and_redis_but_not_their_usage_database() -> None:
    services = compose()["services"]
    a, b = (mounts(services[name]) for name in INSTANCES)
    assert a["/etc/cliproxy"] == b["/etc/cliproxy"] == "./config"
    assert a["/var/lib/cliproxy/auths"] == b["/var/lib/cliproxy/auths"]
    assert a["/var/lib/cliproxy/state"] != b["/var/lib/cliproxy/state"]
    assert a["/var/log/cliproxy"] != b["/var/log/cliproxy"]
    text = (CLUSTER / "config" / "config.yaml").read_text()
    config, _warnings, _ = parse_config_text(text)
    assert config.workers == 2
    assert config.auth_dir == "/var/lib/cliproxy/auths"
    assert config.usage_db.startswith("/var/lib/cliproxy/state/")
    assert config.accounts_db.startswith("/var/lib/cliproxy/auths/")
    redis_url = yaml.safe_load(text)["shared-state"]["redis-url"]
    assert urlsplit(redis_url).hostname in services  # the compose service, by its name
    for name in INSTANCES:
        assert services[name]["environment"]["CLIPROXY_PORT"] == "8317"
        assert services[name]["stop_grace_period"] == "40s"


def test_nginx_forwards_to_the_instances_with_streaming_settings() -> None:
    services = compose()["services"]
    assert mounts(services["nginx"])["/etc/nginx/nginx.conf"] == "./nginx.conf"
    conf = (CLUSTER / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+);", conf, re.MULTILINE)
    assert sorted(servers) == [(name, "8317") for name in INSTANCES]
    for directive in (
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
    ):
        assert directive in conf, directive
    (timeout,) = re.findall(r"proxy_read_timeout (\d+)s;", conf)
    assert int(timeout) >= 600
