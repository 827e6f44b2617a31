"""Anthropic Messages ⇄ IR: requests, answers, `event:`-framed streams the SDK helper accepts, errors, usage."""

from __future__ import annotations

from cliproxy.translate.claude.errors import error_object, stream_error_frame
from cliproxy.translate.claude.request import decode_request, encode_request, set_reasoning
from cliproxy.translate.claude.response import decode_response, encode_response
from cliproxy.translate.claude.stream import ClaudeStreamDecoder, ClaudeStreamEncoder
from cliproxy.translate.claude.usage import native_input_tokens, usage_of, usage_of_event
from cliproxy.translate.codec import Codec
from cliproxy.translate.tool_names import CLAUDE_NAMES

__all__ = ["CODEC", "ClaudeStreamDecoder", "ClaudeStreamEncoder"]

CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ClaudeStreamDecoder,
    stream_encoder=ClaudeStreamEncoder,
    set_reasoning=set_reasoning,
    usage_field="usage",
    usage_of=usage_of,
    usage_of_event=usage_of_event,
    native_input_tokens=native_input_tokens,
    error_object=error_object,
    stream_error_frame=stream_error_frame,
    tool_names=CLAUDE_NAMES,
)
