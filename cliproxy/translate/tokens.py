"""Local token estimates for `count_tokens` / `countTokens` when the upstream cannot count in that dialect.

litellm costs seconds to import, so it is imported here, lazily, on the first estimate and never on
the server's import path; it is told to stay offline (bundled cost map and tokenizers).
"""

from __future__ import annotations

import os
from typing import Any

from cliproxy.translate import Dialect
from cliproxy.translate.codecs import CODECS
from cliproxy.translate.convert import decode_request


def count_tokens_estimate(body: dict[str, Any], src: Dialect, *, model: str) -> int:
    """Estimated prompt tokens of a client body: messages, system prompt and tool definitions."""
    req = decode_request(body, src, model=model)
    chat_body = CODECS[Dialect.CHAT].encode_request(req)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "1")
    import litellm

    messages = chat_body.get("messages") or [{"role": "user", "content": ""}]
    tools = chat_body.get("tools")
    # default image counts: litellm may otherwise fetch image URLs to measure them
    count = litellm.token_counter
    try:
        return int(count(model=req.model, messages=messages, tools=tools, use_default_image_token_count=True))
    except Exception:  # an unknown model or tokenizer: fall back to the default tokenizer
        return int(count(model="", messages=messages, tools=tools, use_default_image_token_count=True))
