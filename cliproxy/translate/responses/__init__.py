"""OpenAI Responses (and Codex) ⇄ IR: input items, output items, the strict lifecycle stream, errors, usage."""

from __future__ import annotations

from cliproxy.translate.codec import Codec, whole_prompt
from cliproxy.translate.responses.errors import error_object, stream_error_frame
from cliproxy.translate.responses.request import decode_request, encode_request, set_reasoning
from cliproxy.translate.responses.response import decode_response, encode_response
from cliproxy.translate.responses.stream import ResponsesStreamDecoder, ResponsesStreamEncoder
from cliproxy.translate.responses.usage import usage_of, usage_of_event
from cliproxy.translate.tool_names import OPENAI_NAMES

__all__ = ["CODEC", "ResponsesStreamDecoder", "ResponsesStreamEncoder"]

CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ResponsesStreamDecoder,
    stream_encoder=ResponsesStreamEncoder,
    set_reasoning=set_reasoning,
    usage_field="usage",
    usage_of=usage_of,
    usage_of_event=usage_of_event,
    native_input_tokens=whole_prompt,
    error_object=error_object,
    stream_error_frame=stream_error_frame,
    tool_names=OPENAI_NAMES,
)
