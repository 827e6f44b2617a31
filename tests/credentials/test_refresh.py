"""Refresh: on demand, single-flight, scheduled before expiry, failures recorded; vertex minting."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cliproxy.credentials.files import AuthFileCredential, format_time
from cliproxy.credentials.jwt import verify_rs256
from cliproxy.credentials.providers import vertex
from cliproxy.credentials.refresh import CredentialRefresher, RefreshError
from cliproxy.credentials.store import load_auth_dir
from tests.fakes.oauth import FakeOAuth


def write_cred(directory: Path, name: str, data: dict[str, Any]) -> AuthFileCredential:
    path = directory / name
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    return next(c for c in load_auth_dir(directory).credentials if c.id == name)


def claude_file(fake: FakeOAuth, expires_in: timedelta, **extra: Any) -> dict[str, Any]:
    return {
        "type": "claude",
        "email": "user@example.com",
        "access_token": "at-old",
        "refresh_token": fake.issue_refresh_token("claude"),
        "expired": format_time(datetime.now(UTC) + expires_in),
        **extra,
    }


async def wait_until(predicate: Any, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_refresh_now_persists_tokens_and_keeps_other_fields(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    cred = write_cred(tmp_path, "claude-a.json", claude_file(fake_oauth, timedelta(hours=1), prefix="p", priority=3))
    refresher = CredentialRefresher(session, fake_oauth.settings())
    fresh = await refresher.refresh_now(cred)
    data = json.loads(cred.path.read_text())
    assert data["access_token"] == fresh.access_token != "at-old"
    assert data["refresh_token"] in fake_oauth.refresh_tokens  # the rotated one, still valid
    assert data["prefix"] == "p" and data["priority"] == 3 and data["email"] == "user@example.com"
    assert fresh.expires_at is not None and fresh.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert stat.S_IMODE(cred.path.stat().st_mode) == 0o600
    assert refresher.status(cred.id).last_refresh is not None and refresher.status(cred.id).last_error == ""


async def test_two_concurrent_refreshes_make_exactly_one_token_request(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    cred = write_cred(tmp_path, "claude-a.json", claude_file(fake_oauth, timedelta(hours=1)))
    fake_oauth.refresh_gate = asyncio.Event()
    refresher = CredentialRefresher(session, fake_oauth.settings())
    first = asyncio.create_task(refresher.refresh_now(cred))
    await wait_until(lambda: fake_oauth.requests["claude:refresh"] == 1)
    second = asyncio.create_task(refresher.refresh_now(cred))  # arrives while the first is in flight
    await asyncio.sleep(0)
    fake_oauth.refresh_gate.set()
    a, b = await asyncio.gather(first, second)
    assert a.access_token == b.access_token
    # A caller still holding the old token (e.g. its request got 401) gets the new credential free.
    c = await refresher.refresh_now(cred)
    assert c.access_token == a.access_token
    assert fake_oauth.requests["claude:refresh"] == 1


async def test_failure_is_recorded_with_backoff_and_no_secret_logged(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cred = write_cred(tmp_path, "codex-a.json", {**claude_file(fake_oauth, timedelta(hours=1)), "type": "codex"})
    fake_oauth.refresh_failure = (400, "invalid_grant")
    refresher = CredentialRefresher(session, fake_oauth.settings())
    with caplog.at_level(logging.WARNING), pytest.raises(RefreshError, match="HTTP 400: invalid_grant"):
        await refresher.refresh_now(cred)
    status = refresher.status(cred.id)
    assert status.failures == 1 and "invalid_grant" in status.last_error
    assert status.next_retry is not None and status.next_retry > datetime.now(UTC) + timedelta(minutes=4)
    assert status.as_dict()["next_retry_after"] is not None
    assert refresher.due_at(cred) is None  # a dead refresh token is not retried automatically
    assert cred.metadata["refresh_token"] not in caplog.text and "at-old" not in caplog.text
    assert json.loads(cred.path.read_text())["access_token"] == "at-old"  # file untouched


async def test_scheduler_refreshes_only_what_is_due(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    # claude lead is 4 h: due. codex lead is 5 days: an expiry 10 days out is not due.
    due = write_cred(tmp_path, "claude-due.json", claude_file(fake_oauth, timedelta(hours=3)))
    later = write_cred(
        tmp_path,
        "codex-later.json",
        {**claude_file(fake_oauth, timedelta(days=10)), "type": "codex", "refresh_token": "rt-unused"},
    )
    codex_due = write_cred(
        tmp_path,
        "codex-due.json",
        {
            **claude_file(fake_oauth, timedelta(days=4)),
            "type": "codex",
            "refresh_token": fake_oauth.issue_refresh_token("codex"),
        },
    )
    seen: list[AuthFileCredential] = []
    refresher = CredentialRefresher(session, fake_oauth.settings(), on_refreshed=seen.append)
    creds = [due, later, codex_due]
    runner = asyncio.create_task(refresher.run(lambda: creds))
    try:
        await wait_until(lambda: len(seen) == 2)
        await asyncio.sleep(0.05)  # a further pass must not refresh anything again
    finally:
        runner.cancel()
    assert sorted(c.id for c in seen) == ["claude-due.json", "codex-due.json"]
    assert fake_oauth.requests["claude:refresh"] == 1 and fake_oauth.requests["codex:refresh"] == 1
    assert json.loads(later.path.read_text())["access_token"] == "at-old"
    assert json.loads(due.path.read_text())["access_token"] != "at-old"
    assert refresher.due_at(later) == later.expires_at - timedelta(days=5)  # type: ignore[operator]


# --------------------------------------------------------------------------- vertex


def service_account(fake: FakeOAuth) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.vertex_keys["sa@proj.iam.gserviceaccount.com"] = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "sa@proj.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


async def test_vertex_token_is_minted_with_a_verifiable_jwt_and_cached(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    sa = service_account(fake_oauth)
    data = vertex.credential_json(sa, location="europe-west4")
    cred = write_cred(tmp_path, vertex.credential_filename(data), data)
    assert cred.id == "vertex-proj.json" and cred.label == "sa@proj.iam.gserviceaccount.com"
    settings = fake_oauth.settings().vertex
    source = vertex.VertexTokenSource(session, settings)
    first, second = await asyncio.gather(source.token(cred), source.token(cred))
    assert first == second and first.startswith("ya29.fake-")
    assert await source.token(cred) == first
    assert fake_oauth.requests["google:jwt"] == 1  # one mint for three callers
    source.invalidate(cred)
    assert await source.token(cred) != first
    assert vertex.model_url(settings, cred, "gemini-2.5-pro", "generateContent") == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4"
        "/publishers/google/models/gemini-2.5-pro:generateContent"
    )


def test_vertex_assertion_verifies_with_the_public_key() -> None:
    fake = FakeOAuth()
    sa = service_account(fake)
    assertion = vertex.build_assertion(sa, token_url="https://oauth2.googleapis.com/token", now=1_800_000_000)
    claims = verify_rs256(assertion, fake.vertex_keys[sa["client_email"]])
    assert claims == {
        "iss": sa["client_email"],
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1_800_000_000,
        "exp": 1_800_003_600,
    }
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        verify_rs256(assertion, other)


def test_vertex_global_location_uses_the_global_host(tmp_path: Path) -> None:
    fake = FakeOAuth()
    data = vertex.credential_json(service_account(fake), location="global")
    cred = write_cred(tmp_path, "vertex-proj.json", data)
    url = vertex.model_url(vertex.VertexSettings(), cred, "m", "streamGenerateContent?alt=sse")
    assert url.startswith("https://aiplatform.googleapis.com/v1/projects/proj/locations/global/")


async def test_a_transient_failure_is_retried_by_the_scheduler_after_the_backoff(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    cred = write_cred(tmp_path, "claude-a.json", claude_file(fake_oauth, timedelta(hours=1)))
    now = [datetime.now(UTC)]
    refresher = CredentialRefresher(session, fake_oauth.settings(), clock=lambda: now[0])
    fake_oauth.refresh_failure = (500, "temporarily_unavailable")
    with pytest.raises(RefreshError, match="HTTP 500"):
        await refresher.refresh_now(cred)
    status = refresher.status(cred.id)
    assert not status.dead and status.failures == 1
    assert refresher.due_at(cred) == now[0] + timedelta(minutes=5)  # a failed refresh is retried after 5 min

    fake_oauth.refresh_failure = None
    runner = asyncio.create_task(refresher.run(lambda: [cred]))
    try:
        now[0] += timedelta(minutes=4)
        refresher.wake()
        await asyncio.sleep(0.1)
        assert fake_oauth.requests["claude:refresh"] == 1  # still backing off
        now[0] += timedelta(minutes=2)
        refresher.wake()
        await wait_until(lambda: fake_oauth.requests["claude:refresh"] == 2 and status.refreshes == 1)
    finally:
        runner.cancel()
    assert status.failures == 0 and status.last_error == "" and status.next_retry is None
    assert json.loads(cred.path.read_text())["access_token"] != "at-old"


async def test_a_refresh_never_brings_back_a_deleted_file(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    cred = write_cred(tmp_path, "claude-a.json", claude_file(fake_oauth, timedelta(hours=1)))
    cred.path.unlink()
    refresher = CredentialRefresher(session, fake_oauth.settings())
    with pytest.raises(RefreshError, match="removed"):
        await refresher.refresh_now(cred)
    assert not cred.path.exists()
    assert fake_oauth.requests["claude:refresh"] == 0  # the single-use refresh token was not spent


async def test_scheduler_stops_when_cancelled_just_as_it_is_woken(
    fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    """Shutdown cancels the scheduler; a `wake()` in the same loop turn must not swallow that cancel.

    Python 3.11's `asyncio.wait_for` returns the inner result instead of raising when the cancel
    arrives after the awaited event fired, so the loop went on and app cleanup waited forever.
    """
    refresher = CredentialRefresher(session, fake_oauth.settings())
    task = asyncio.create_task(refresher.run(list))
    await asyncio.sleep(0.05)  # idle: waiting for its next due time or a wake
    refresher.wake()
    await asyncio.sleep(0)  # the event's waiter completes first
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
