"""Opaque reasoning signatures that cross a dialect boundary and must come back intact.

A Claude client talking to a Codex upstream receives OpenAI `encrypted_content`; a Codex client
talking to Claude receives Claude thinking signatures. The client can only hand them back in its own
dialect's field (Claude `signature`, Responses `encrypted_content`), so they are wrapped with the
producing family. On the next request the wrapper tells the codec whether the target family can
verify the value (then it is sent unwrapped) or not (then the block is dropped, never forwarded as
a bogus signature).
"""

from __future__ import annotations

from cliproxy.translate.ir import Family

_PREFIX = "cpx1:"
_FAMILIES: tuple[Family, ...] = ("claude", "openai", "gemini")


def wrap(family: Family | None, signature: str, *, native: Family) -> str:
    """The value to show a client whose own family is `native`."""
    if family is None or family == native:
        return signature
    return f"{_PREFIX}{family}:{signature}"


def unwrap(signature: str | None, *, native: Family) -> tuple[Family, str | None]:
    """(family, raw signature) of a value a client sent back."""
    if not signature or not signature.startswith(_PREFIX):
        return native, signature
    family, _, raw = signature[len(_PREFIX) :].partition(":")
    for f in _FAMILIES:
        if f == family:
            return f, raw
    return native, signature
