"""The upstream body of a passthrough action: the client's request as it is, the model swapped.

`/responses/compact`, `/alpha/search`, the images routes and `/v1beta/interactions` are not
translated: the upstream must speak the route's own API. Only the model name changes (an alias,
a prefix) and what the upstream kind refuses is taken out (`Executor.fit_action_body`). An image
edit is a multipart form, whose `model` field is read and replaced here too.
"""

from __future__ import annotations

import re

from cliproxy import jsonio
from cliproxy.routing.call import Call
from cliproxy.routing.credentials import Credential

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_FIELD_NAME = re.compile(rb'name="([^"]*)"', re.I)


def raw_body(call: Call, cred: Credential, upstream_model: str) -> tuple[bytes, str | None]:
    """The body of `call.action` for `cred` under `upstream_model`, and its content type when it is
    not JSON (a multipart form keeps its own, boundary included)."""
    content_type = call.headers.get("Content-Type", "")
    if content_type.lower().startswith("multipart/"):
        payload = call.raw
        if call.body.get("model") not in (None, upstream_model):
            payload = replace_form_field(call.raw, content_type, "model", upstream_model) or call.raw
        return payload, content_type
    body = dict(call.body)
    changed = False
    if "model" in body and body["model"] != upstream_model:
        body["model"] = upstream_model
        changed = True
    if cred.executor.fit_action_body(call.action, body):
        changed = True
    return (jsonio.dumps(body) if changed else call.raw), None


def _parts(raw: bytes, content_type: str) -> tuple[bytes, list[bytes]] | None:
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode()
    pieces = raw.split(delimiter)
    if len(pieces) < 3:
        return None
    return delimiter, pieces


def _field(part: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(head, value, tail) of one part: its headers, its content, and the line break before the next."""
    head_end = part.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = part[: head_end + 4]
    value = part[head_end + 4 :]
    tail = b"\r\n" if value.endswith(b"\r\n") else b""
    return head, value[: len(value) - len(tail)], tail


def form_field(raw: bytes, content_type: str, name: str) -> str | None:
    """A text field of a multipart form (`model` of an image edit), or None."""
    split = _parts(raw, content_type)
    if split is None:
        return None
    for part in split[1][1:-1]:
        parsed = _field(part)
        if parsed is None:
            continue
        head, value, _ = parsed
        found = _FIELD_NAME.search(head)
        if found is not None and found.group(1) == name.encode() and b"filename=" not in head.lower():
            return value.decode("utf-8", "replace")
    return None


def replace_form_field(raw: bytes, content_type: str, name: str, value: str) -> bytes | None:
    """The form with the text field `name` set to `value` (None when the form has no such field)."""
    split = _parts(raw, content_type)
    if split is None:
        return None
    delimiter, pieces = split
    for index in range(1, len(pieces) - 1):
        parsed = _field(pieces[index])
        if parsed is None:
            continue
        head, _, tail = parsed
        found = _FIELD_NAME.search(head)
        if found is not None and found.group(1) == name.encode() and b"filename=" not in head.lower():
            pieces[index] = head + value.encode() + tail
            return delimiter.join(pieces)
    return None
