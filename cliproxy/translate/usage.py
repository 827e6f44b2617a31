"""Token usage of any dialect's answers and stream events, as IR `Usage`, for translation and records.

Each codec owns the one parser of its dialect's usage object; these entries pick it by `Dialect`.
Passthrough traffic is the hot path: callers parse only the stream events that mention usage, and
`usage_in_answer` parses only the usage object of a long whole answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cliproxy import jsonio
from cliproxy.translate import Dialect
from cliproxy.translate.codecs import CODECS
from cliproxy.translate.ir import Usage

WHOLE_PARSE_BELOW = 8192  # bytes: a shorter answer is parsed whole (about as cheap as finding its usage)
_QUOTED_FIELD: Final[Mapping[Dialect, bytes]] = {d: b'"%s"' % c.usage_field.encode() for d, c in CODECS.items()}


def usage_of_body(dialect: Dialect, obj: Any) -> Usage | None:
    """Usage of a parsed non-stream answer of `dialect` (None when it carries none, or is no object)."""
    if type(obj) is not dict:
        return None
    codec = CODECS[dialect]
    return codec.usage_of(obj.get(codec.usage_field))


def usage_of_event(dialect: Dialect, obj: Any) -> Usage | None:
    """Usage carried by one parsed stream event of `dialect`, if any (chat's last chunk, Claude's
    `message_start` and `message_delta`, Responses' terminal event, every Gemini chunk).

    Streams report usage in pieces (Claude's input comes first, its output last); `Usage.merge` keeps
    the latest value of each field.
    """
    return CODECS[dialect].usage_of_event(obj)


def usage_in_answer(dialect: Dialect, data: bytes) -> Usage | None:
    """Usage of a whole (non-stream) JSON answer of `dialect`, from its bytes.

    A long answer is not parsed whole: every dialect puts its usage object after the content, so
    the last `"usage"` key (`"usageMetadata"` for Gemini) is found and only the object after it is
    parsed, up to the brace that balances its opening one (usage objects hold no strings with
    braces). A quoted `"usage"` inside generated text is escaped in JSON (`\\"usage\\"`), so it
    never matches. When the object cannot be read that way, the whole answer is parsed after all.
    """
    codec = CODECS[dialect]
    if len(data) >= WHOLE_PARSE_BELOW:
        key = _QUOTED_FIELD[dialect]
        at = data.rfind(key)
        if at >= 0:
            start = data.find(b"{", at + len(key))
            if start > 0 and data[at + len(key) : start].strip() == b":":
                end = data.find(b"}", start)
                while end > 0 and data.count(b"{", start, end) != data.count(b"}", start, end) + 1:
                    end = data.find(b"}", end + 1)  # that brace closed a nested detail object
                if end > 0:
                    try:
                        found = jsonio.loads(data[start : end + 1])
                    except ValueError:
                        found = None
                    if type(found) is dict:
                        return codec.usage_of(found)
    try:
        obj = jsonio.loads(data)
    except ValueError:
        return None
    return codec.usage_of(obj.get(codec.usage_field)) if type(obj) is dict else None


def native_input_tokens(dialect: Dialect, usage: Usage) -> int:
    """The input count in `dialect`'s own terms, as usage records keep it: the whole prompt, except
    for Claude, whose `input_tokens` leaves out the tokens read from or written to the cache."""
    return CODECS[dialect].native_input_tokens(usage)
