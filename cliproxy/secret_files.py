"""Files with secrets, checked the way careful tools (ssh, gpg) check them before use.

The CLI's login token file, and the config file and auth-dir the CLI writes, are refused when
group or others may read, write or enter them (`chmod 600` / `chmod 700` fixes it), and, inside
a Git repository, when Git tracks them or does not ignore them (one `git add .` away from a
published secret). Each refusal says what is wrong and the command that fixes it. Without a
`git` program the Git check is skipped: there is then nothing that could commit the file.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

GIT_TIMEOUT_SECONDS = 10.0


class SecretFileError(Exception):
    """A secret file or directory that must not be used as it is; the message says how to fix it."""


def git_root(path: Path) -> Path | None:
    """The work tree that contains `path` (a `.git` directory or file in it or a parent), or None."""
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def _git(root: Path, *args: str) -> int | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(root), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.returncode


def check_permissions(path: Path, *, directory: bool) -> None:
    """Refuse `path` when group or others have any access to it (a missing path passes)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & 0o077:
        want = "700" if directory else "600"
        raise SecretFileError(
            f"{path} is accessible by other users (mode {stat.S_IMODE(mode):03o}); it holds secrets. "
            f"Fix it with: chmod {want} {path}"
        )


def check_git(path: Path) -> None:
    """Refuse `path` when it is inside a Git work tree and tracked there or not ignored."""
    absolute = path.absolute()
    root = git_root(absolute.parent if not absolute.is_dir() else absolute)
    if root is None:
        return
    relative = str(absolute.relative_to(root))
    if _git(root, "ls-files", "--error-unmatch", "--", relative) == 0:
        raise SecretFileError(
            f"{path} holds secrets and is tracked by the Git repository at {root}. Remove it from Git with: "
            f"git -C {root} rm --cached -r -- {relative} (and add it to .gitignore)"
        )
    if _git(root, "check-ignore", "-q", "--", relative) == 1:
        raise SecretFileError(
            f"{path} holds secrets and is inside the Git repository at {root} without being ignored. "
            f"Add it to {root / '.gitignore'} (or keep it outside the repository)"
        )


def check_secret_path(path: Path, *, directory: bool = False) -> None:
    """Both checks; raises `SecretFileError`."""
    check_permissions(path, directory=directory)
    check_git(path)
