"""The container image and the systemd unit run the command the README documents, as an
unprivileged user, with the sandboxing, volumes and health check they promise. Where a container
engine answers, the image is built and run; otherwise the files are checked as written."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cliproxy import __version__
from cliproxy.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR, STATE_DIR, LOG_DIR = "/etc/cliproxy", "/var/lib/cliproxy", "/var/log/cliproxy"


def documented_command() -> list[str]:
    """The serve command of README's "Running as a service" section (its first `cliproxy` line)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    line = next(ln.strip() for ln in section.splitlines() if ln.strip().startswith("cliproxy --config"))
    return shlex.split(line)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    start = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[start:]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((REPO / "deploy" / "cliproxy.service").read_text())
    return parser


def test_the_documented_command_is_a_valid_cliproxy_invocation() -> None:
    command = documented_command()
    assert command[0] == "cliproxy"
    args = build_parser().parse_args(command[1:])
    assert args.config == f"{CONFIG_DIR}/config.yaml" and args.command is None  # it serves


def test_image_entry_point_runs_the_documented_command_as_an_unprivileged_user() -> None:
    stage = final_stage()
    (base,) = [rest for word, rest in stage if word == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    (entrypoint,) = [rest for word, rest in stage if word == "ENTRYPOINT"]
    assert json.loads(entrypoint) == documented_command()
    assert not [rest for word, rest in stage if word == "CMD"]
    (user,) = [rest for word, rest in stage if word == "USER"]
    assert user not in ("root", "0") and not user.startswith("0:")
    (volumes,) = [json.loads(rest) for word, rest in stage if word == "VOLUME"]
    assert set(volumes) == {CONFIG_DIR, STATE_DIR, LOG_DIR}
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "CLIPROXY_HOST=0.0.0.0" in env  # every interface, but only inside the container
    assert "CLIPROXY_PORT=8317" in env and ("EXPOSE", "8317") in stage
    (health,) = [rest for word, rest in stage if word == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health


def test_dockerignore_keeps_configs_credentials_and_logs_out_of_the_image() -> None:
    rules = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip()]
    assert rules[1] == "*" or "*" in rules  # everything excluded, then only the package let back in
    assert {r for r in rules if r.startswith("!")} == {"!pyproject.toml", "!README.md", "!cliproxy/"}


def test_systemd_unit_runs_the_documented_command_in_a_sandbox() -> None:
    service = unit()["Service"]
    exec_start = shlex.split(service["ExecStart"])
    assert [Path(exec_start[0]).name, *exec_start[1:]] == documented_command()
    assert service["User"] not in ("root", "0")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    writable = set(service["ReadWritePaths"].split())
    assert {CONFIG_DIR, STATE_DIR, LOG_DIR} <= writable  # the config, the auth-dir and usage, the logs
    assert service["ProtectHome"] == "yes" and service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert int(service["TimeoutStopSec"]) > 30  # the shutdown grace for in-flight requests fits


def test_compose_file_builds_this_image_and_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["cliproxy"]
    assert service["build"] == "."
    assert all(str(port).startswith("127.0.0.1:") for port in service["ports"])
    assert {volume.split(":", 1)[1] for volume in service["volumes"]} == {CONFIG_DIR, STATE_DIR, LOG_DIR}
    assert service["read_only"] is True and "no-new-privileges:true" in service["security_opt"]


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0


@pytest.mark.subprocess
def test_the_image_builds_and_answers_version() -> None:
    if not engine_answers():
        pytest.skip("no container engine answers here; the files were checked as written")
    tag = "cliproxy-packaging-test"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(REPO)], check=True, timeout=900)
    run = subprocess.run(["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == f"cliproxy {__version__}"
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=120
    )
    assert user.stdout.strip() not in ("", "0")
