"""A real `redis-server` for the shared-state tests: on a free loopback port, in a temp dir, per test.

When `redis-server` is missing it is installed with `apt-get` (only as root with apt-get, as
`.ci/run` does); otherwise the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fixtures import start_proxy, upstream
from tests.server.processes import free_port
from tests.shared.tls import TlsFiles, private_ca

PASSWORD = "redis-pass-7f3c9e21"


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], env=env, capture_output=True, check=False)
        found = shutil.which("redis-server")
    return found


class RedisServer:
    """One `redis-server` process that a test can stop and start again on the same port; with `tls`,
    it speaks only TLS on that port with the certificate `tls` holds (clients need no certificate)."""

    def __init__(self, binary: str, directory: Path, tls: TlsFiles | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://:{PASSWORD}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--requirepass", PASSWORD, "--dir", str(self.directory)]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            args += ["--tls-ca-cert-file", str(self.tls.ca)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                assert self.proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server never listened"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def running_redis(tmp_path_factory: pytest.TempPathFactory, *, tls: bool) -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (and could not be installed: not root, or no apt-get)")
    directory = tmp_path_factory.mktemp("redis")
    server = RedisServer(binary, directory, private_ca(directory) if tls else None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path_factory, tls=False)


@pytest.fixture
def tls_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A `redis-server` on TLS only, its certificate signed by a throwaway CA (`url` names the CA file)."""
    yield from running_redis(tmp_path_factory, tls=True)


__all__ = ["start_proxy", "upstream"]
