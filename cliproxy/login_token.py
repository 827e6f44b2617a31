"""The CLI's personal login tokens, one per proxy, in `<config dir>/cliproxy/login.json` (0600).

`cliproxy login --proxy URL` saves the token the proxy issued; later commands use it when no key
is given (`cliproxy whoami`, `models`, `keys`). The config dir is `$XDG_CONFIG_HOME`, else
`~/.config`. The file is checked like every secret file (`secret_files`) before it is read or
written, and replaced atomically with mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliproxy.config.write import atomic_write_text
from cliproxy.secret_files import check_secret_path

FILE_NAME = "login.json"


def login_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "cliproxy" / FILE_NAME


@dataclass(frozen=True)
class StoredLogin:
    proxy: str
    token: str
    expires: float | None
    created: float
    user: str
    role: str = ""
    team: str = ""

    @property
    def expired(self) -> bool:
        return self.expires is not None and self.expires <= time.time()


def normal_url(url: str) -> str:
    return url.strip().rstrip("/")


def _read(path: Path) -> dict[str, Any]:
    check_secret_path(path)
    check_secret_path(path.parent, directory=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _logins(data: dict[str, Any]) -> dict[str, Any]:
    logins = data.get("proxies")
    return logins if isinstance(logins, dict) else {}


def load_login(proxy: str | None = None, path: Path | None = None) -> StoredLogin | None:
    """The stored login for `proxy` (None: the one signed in to last), or None."""
    data = _read(path or login_file())
    logins = _logins(data)
    url = normal_url(proxy) if proxy else str(data.get("default") or "")
    entry = logins.get(url) if url else None
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    return StoredLogin(
        proxy=url,
        token=entry["token"],
        expires=entry.get("expires"),
        created=float(entry.get("created") or 0),
        user=str(entry.get("user") or ""),
        role=str(entry.get("role") or ""),
        team=str(entry.get("team") or ""),
    )


def save_login(login: StoredLogin, path: Path | None = None) -> Path:
    """Store `login` (the proxy's entry replaced, it becomes the default) atomically, 0600."""
    target = path or login_file()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    logins = _logins(_read(target))
    logins[login.proxy] = {
        "token": login.token,
        "expires": login.expires,
        "created": login.created,
        "user": login.user,
        "role": login.role,
        "team": login.team,
    }
    atomic_write_text(target, json.dumps({"default": login.proxy, "proxies": logins}, indent=2), mode=0o600)
    return target
