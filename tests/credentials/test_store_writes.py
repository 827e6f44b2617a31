"""`CredentialStore`, the one writer of auth-dir files: locks, read-modify-write, atomic 0600, races."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cliproxy.credentials.files import CredentialFileError, format_time
from cliproxy.credentials.locks import KeyedLocks
from cliproxy.credentials.refresh import CredentialRefresher
from cliproxy.credentials.store import CredentialStore, UnreadableFile, load_auth_dir
from cliproxy.server.services import SERVICES
from tests.conftest import ProxyFactory
from tests.fakes.oauth import FakeOAuth
from tests.management.client import MANAGEMENT_BLOCK, Mgmt


def claude_file(**extra: Any) -> dict[str, Any]:
    return {"type": "claude", "email": "a@x.com", "access_token": "at-old", **extra}


def put(directory: Path, name: str, data: Any, mode: int = 0o600) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    os.chmod(path, mode)
    return path


async def until(check: Any, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_concurrent_updates_of_one_file_are_never_lost(tmp_path: Path) -> None:
    path = put(tmp_path, "claude-a.json", claude_file(note=""))
    store = CredentialStore()

    def append(letter: str) -> Any:
        def change(data: dict[str, Any]) -> dict[str, Any]:
            data["note"] += letter
            return data

        return change

    letters = [chr(ord("a") + i) for i in range(20)]
    await asyncio.gather(*(store.update(path, append(letter)) for letter in letters))
    assert sorted(json.loads(path.read_text())["note"]) == letters
    assert len(store._locks) == 0  # no lock is kept for a file nobody writes


async def test_concurrent_updates_through_two_stores_are_never_lost(tmp_path: Path) -> None:
    """Worker processes each have a store of their own: the lock on the auth-dir orders them."""
    path = put(tmp_path, "claude-a.json", claude_file(note=""))
    stores = (CredentialStore(), CredentialStore())

    def append(letter: str) -> Any:
        def change(data: dict[str, Any]) -> dict[str, Any]:
            data["note"] += letter
            return data

        return change

    letters = [chr(ord("a") + i) for i in range(20)]
    await asyncio.gather(*(stores[i % 2].update(path, append(letter)) for i, letter in enumerate(letters)))
    assert sorted(json.loads(path.read_text())["note"]) == letters


async def test_put_validates_first_writes_0600_and_returns_the_parsed_credential(tmp_path: Path) -> None:
    store = CredentialStore()
    path = tmp_path / "claude-a.json"
    cred = await store.put(path, lambda current: claude_file(prefix="team"))
    assert cred.prefix == "team" and cred.id == "claude-a.json" and cred.sha256
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(CredentialFileError, match="access_token or refresh_token is required"):
        await store.put(path, lambda current: {"type": "claude"})
    assert json.loads(path.read_text())["prefix"] == "team"  # an invalid result is never written
    await store.update(path, lambda data: {**data, "note": "n"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["claude-a.json"]  # no temp files left


async def test_update_needs_an_existing_readable_file(tmp_path: Path) -> None:
    store = CredentialStore()
    with pytest.raises(FileNotFoundError):
        await store.update(tmp_path / "claude-a.json", lambda data: data)
    with pytest.raises(FileNotFoundError):
        await store.put(tmp_path / "claude-a.json", lambda current: claude_file(), create=False)
    assert list(tmp_path.iterdir()) == []
    put(tmp_path, "claude-b.json", "{oops")
    with pytest.raises(UnreadableFile, match="not valid JSON"):
        await store.update(tmp_path / "claude-b.json", lambda data: data)
    seen: list[Any] = []

    def replace(current: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(current)
        return claude_file()

    await store.put(tmp_path / "claude-b.json", replace)  # a new login may replace a broken file
    assert seen == [None] and json.loads((tmp_path / "claude-b.json").read_text())["access_token"] == "at-old"


async def test_unsafe_names_never_reach_the_disk(tmp_path: Path) -> None:
    store = CredentialStore()
    for name in ("../evil.json", "notes.txt", ".."):
        with pytest.raises(CredentialFileError):
            await store.put(tmp_path / name, lambda current: claude_file())
    assert list(tmp_path.iterdir()) == []


async def test_delete_and_delete_all(tmp_path: Path) -> None:
    store = CredentialStore()
    put(tmp_path, "claude-a.json", claude_file())
    put(tmp_path, "claude-b.json", claude_file())
    put(tmp_path, "keep.txt", "not a credential")
    assert await store.delete(tmp_path / "claude-a.json") is True
    assert await store.delete(tmp_path / "claude-a.json") is False
    assert await store.delete_all(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


class RecordingLocks:
    """A stand-in for a shared lock space (the seam a cross-process lock plugs into)."""

    def __init__(self) -> None:
        self.inner = KeyedLocks()
        self.held: list[str] = []

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self.inner.hold(key):
            self.held.append(key)
            yield


async def test_a_refresh_merges_its_tokens_into_the_file_as_it_is_when_they_arrive(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    soon = format_time(datetime.now(UTC) + timedelta(hours=1))
    put(tmp_path, "claude-a.json", claude_file(refresh_token=fake_oauth.issue_refresh_token("claude"), expired=soon))
    (cred,) = load_auth_dir(tmp_path).credentials
    store, locks = CredentialStore(), RecordingLocks()
    refresher = CredentialRefresher(session, fake_oauth.settings(), store=store, locks=locks)
    fake_oauth.refresh_gate = asyncio.Event()
    refresh = asyncio.create_task(refresher.refresh_now(cred))
    await until(lambda: fake_oauth.requests["claude:refresh"] == 1)
    # While the token endpoint is slow, someone else edits the file through the store.
    await store.update(cred.path, lambda data: {**data, "disabled": True, "note": "edited meanwhile"})
    fake_oauth.refresh_gate.set()
    fresh = await refresh
    data = json.loads(cred.path.read_text())
    assert data["disabled"] is True and data["note"] == "edited meanwhile"
    assert data["access_token"] == fresh.access_token != "at-old" and fresh.disabled
    assert locks.held == ["claude-a.json"]  # the refresh ran under the refresh lock of its credential


async def test_a_bad_hand_edit_during_a_refresh_never_loses_the_new_refresh_token(
    tmp_path: Path, fake_oauth: FakeOAuth, session: aiohttp.ClientSession
) -> None:
    put(tmp_path, "claude-a.json", claude_file(refresh_token=fake_oauth.issue_refresh_token("claude")))
    (cred,) = load_auth_dir(tmp_path).credentials
    refresher = CredentialRefresher(session, fake_oauth.settings())
    fake_oauth.refresh_gate = asyncio.Event()
    refresh = asyncio.create_task(refresher.refresh_now(cred))
    await until(lambda: fake_oauth.requests["claude:refresh"] == 1)
    put(tmp_path, "claude-a.json", claude_file(weight=2_000_000))  # an editor, not the store
    fake_oauth.refresh_gate.set()
    fresh = await refresh
    data = json.loads(cred.path.read_text())
    assert data["refresh_token"] == fresh.refresh_token and data["refresh_token"] in fake_oauth.refresh_tokens


async def test_a_disabled_patch_made_while_a_refresh_waits_survives_the_refresh(
    proxy: ProxyFactory, fake_oauth: FakeOAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of the architecture issue: management toggles `disabled` while the refresher
    waits on a slow token endpoint; the refresh must not write the old `disabled: false` back."""
    for name, value in fake_oauth.env().items():
        monkeypatch.setenv(name, value)
    auths = tmp_path / "auths"
    auths.mkdir()
    soon = format_time(datetime.now(UTC) + timedelta(hours=1))  # inside Claude's 4-hour refresh lead
    path = put(
        auths, "claude-a.json", claude_file(refresh_token=fake_oauth.issue_refresh_token("claude"), expired=soon)
    )
    fake_oauth.refresh_gate = asyncio.Event()  # the token endpoint answers only when we say so
    server = await proxy(f"host: 127.0.0.1\napi-keys: [sk-client]\nauth-dir: {auths}\n" + MANAGEMENT_BLOCK)
    mgmt = Mgmt(server)
    await until(lambda: fake_oauth.requests["claude:refresh"] == 1)  # the scheduler's refresh is waiting

    reply = await mgmt.patch("/auth-files/status", json={"name": "claude-a.json", "disabled": True})
    assert (reply.status, reply.json()) == (200, {"status": "ok", "disabled": True})
    fake_oauth.refresh_gate.set()
    await until(lambda: json.loads(path.read_text())["access_token"] != "at-old")

    data = json.loads(path.read_text())
    assert data["disabled"] is True  # the management change survived the refresh
    assert data["access_token"].startswith("at-claude-") and data["refresh_token"] in fake_oauth.refresh_tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def served_disabled() -> bool:
        creds = [c for c in server.app[SERVICES].holder.current.auth_files if c.name == path.name]
        return bool(creds) and creds[0].disabled and creds[0].access_token == data["access_token"]

    await until(served_disabled)
    (entry,) = (await mgmt.get("/auth-files?name=claude-a.json")).json()["files"]
    assert entry["status"] == "disabled" and entry["disabled"] is True
    assert fake_oauth.requests["claude:refresh"] == 1
