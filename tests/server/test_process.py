"""The real process: TLS, startup errors, graceful shutdown on SIGTERM/SIGINT, request ids."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import signal
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ProxyFactory
from tests.server.processes import free_port, spawn, stop, wait_healthy

pytestmark = pytest.mark.subprocess


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_tls_serves_https_and_sigterm_exits_0(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    (tmp_path / "config.yaml").write_text(
        f"host: 127.0.0.1\nport: {port}\nauth-dir: ./auths\ntls:\n  enable: true\n  cert: {cert}\n  key: {key}\n"
    )
    proc = spawn(["-m", "cliproxy", "--config", "config.yaml"], cwd=tmp_path)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        await wait_healthy(proc, f"https://127.0.0.1:{port}/healthz", ssl_context=client_ctx)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served on a TLS port
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


@pytest.mark.parametrize("missing", ["cert", "key"])
async def test_missing_tls_file_exits_1_with_a_clear_error(tmp_path: Path, missing: str) -> None:
    cert, key = self_signed(tmp_path)
    (cert if missing == "cert" else key).unlink()
    (tmp_path / "config.yaml").write_text(
        f"host: 127.0.0.1\nport: {free_port()}\ntls:\n  enable: true\n  cert: {cert}\n  key: {key}\n"
    )
    proc = spawn(["-m", "cliproxy", "--config", "config.yaml"], cwd=tmp_path)
    code, _, err = stop(proc, sig=None, timeout=30)
    assert code == 1
    assert f"error: tls.{missing}: file not found: " in err
    assert "Traceback" not in err


async def test_tls_enabled_without_files_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("tls:\n  enable: true\n")
    proc = spawn(["-m", "cliproxy", "--config", "config.yaml"], cwd=tmp_path)
    code, _, err = stop(proc, sig=None, timeout=30)
    assert code == 1
    assert "tls.cert and tls.key are both required" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_shutdown_lets_an_in_flight_request_finish(tmp_path: Path, sig: int) -> None:
    """The honest in-flight check: a test-only route (added through `FEATURES` by a launcher that
    runs the real CLI) has sent its headers and is still working when the signal arrives; the
    client must still get the whole body, and the process must exit 0."""
    port = free_port()
    (tmp_path / "config.yaml").write_text(f"host: 127.0.0.1\nport: {port}\nauth-dir: ./auths\n")
    proc = spawn(["-m", "tests.server.launch_with_slow_route", "--config", "config.yaml"], cwd=tmp_path)
    signalled = False
    try:
        await wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/test/slow?seconds=1.0") as r,
        ):
            assert await r.content.readexactly(len(b"started;")) == b"started;"
            proc.send_signal(sig)
            signalled = True
            # The listener closes while the in-flight request keeps going.
            deadline = time.monotonic() + 10
            async with aiohttp.ClientSession() as other:
                while True:
                    try:
                        async with other.get(f"http://127.0.0.1:{port}/healthz"):
                            pass
                    except aiohttp.ClientError:
                        break
                    assert time.monotonic() < deadline, "the listener stayed open after the signal"
                    await asyncio.sleep(0.05)
            assert await r.content.read() == b"finished"
    finally:
        code, _, err = await asyncio.to_thread(stop, proc, None if signalled else signal.SIGTERM)
    assert code == 0, err


async def test_every_response_has_a_request_id(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-rid-key-1234]\n")
    seen: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for method, path in [
            ("GET", "/healthz"),
            ("GET", "/"),
            ("OPTIONS", "/v1/chat/completions"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/no/such/path"),
            ("GET", "/v0/management/config"),
        ]:
            async with session.request(method, server.make_url(path)) as r:
                rid = r.headers["X-Request-Id"]
                assert re.fullmatch(r"[0-9a-f]{8}", rid), (path, rid)
                seen.add(rid)
    assert len(seen) == 6


async def test_healthz_answers_get_and_head(proxy: ProxyFactory) -> None:
    server = await proxy("host: 127.0.0.1\napi-keys: [sk-some-key-1234]\n")
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/healthz")) as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with session.head(server.make_url("/healthz")) as r:
            assert r.status == 200
