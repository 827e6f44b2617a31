"""Claude Code's body signature (`cch=` in its billing header block), as CLIProxyAPI computes it.

Claude Code signs what it sends to a subscription: the billing block carries `cch=00000;`, the
body is hashed with those digits zeroed, and the digits are replaced by the hash. The hash reads
the body with every `model` string emptied and every `max_tokens`, `fallbacks` and
`fallback_credit_token` member left out (so a gateway may change those without re-signing):
xxHash64 with a fixed seed, the low 20 bits as 5 hex digits. The body is serialised compactly in
key order, so leaving a member out of the value and serialising it again gives exactly the bytes
with that member (and its comma) cut out.
"""

from __future__ import annotations

from typing import Any

import xxhash

from cliproxy import jsonio

PLACEHOLDER = b"cch=00000;"
SEED = 0x4D659218E32A3268
_UNSIGNED = frozenset({"max_tokens", "fallbacks", "fallback_credit_token"})


def _view(value: Any) -> Any:
    """`value` as the signature reads it."""
    if isinstance(value, dict):
        return {
            k: ("" if k == "model" and isinstance(v, str) else _view(v)) for k, v in value.items() if k not in _UNSIGNED
        }
    if isinstance(value, list):
        return [_view(v) for v in value]
    return value


def sign(payload: bytes, body: dict[str, Any]) -> bytes:
    """`payload` (the serialised `body`, whose billing block holds the placeholder) with its signature."""
    if payload.count(PLACEHOLDER) != 1:
        return payload
    digest = xxhash.xxh64_intdigest(jsonio.dumps(_view(body)), seed=SEED) & 0xFFFFF
    return payload.replace(PLACEHOLDER, b"cch=%05x;" % digest)
