"""Label values for metrics: bounded in number, and never a secret.

A label value that a client controls (the model it asks for) or that grows with the config (client
keys) could otherwise make a new time series per request. `LabelCap` keeps the first `limit`
distinct values of one label and counts every later newcomer as `other`.
"""

from __future__ import annotations

from cliproxy.clientkeys import KeyTable

OTHER = "other"  # the bucket for label values past the cap, or unknown ones


class LabelCap:
    """At most `limit` distinct values of one label; values past that are reported as `other`."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self.seen
        if value in seen:
            return value
        if len(seen) < self.limit:
            seen.add(value)
            return value
        return OTHER


def route_label(path: str) -> str:
    """The route a request path belongs to, as the router names it: a Gemini path carries the model
    (`/v1beta/models/gemini-2.5-pro:generateContent`), which is its own label, so it becomes
    `/v1beta/models/{target}`."""
    head, sep, _ = path.partition("/models/")
    return head + "/models/{target}" if sep else path


def key_labels(keys: KeyTable) -> dict[str, str]:
    """Usage records name a client by its key id (`sk-…abcd`, or the key object's name); metrics
    name it by the key object's `name`, else by the first 8 hex digits of the key's SHA-256."""
    labels: dict[str, str] = {}
    for identity in keys.by_digest.values():
        name = identity.policy.name if identity.policy is not None else ""
        labels[identity.key_id] = name or f"sha256:{identity.digest.hex()[:8]}"
    return labels
