"""Google generateContent ⇄ IR: contents/parts, upper-case schemas, `data:`-only streams, errors, usage."""

from __future__ import annotations

from cliproxy.translate.codec import Codec, whole_prompt
from cliproxy.translate.gemini.errors import error_object, stream_error_frame
from cliproxy.translate.gemini.request import SKIP_SIGNATURE, decode_request, encode_request, set_reasoning
from cliproxy.translate.gemini.response import decode_response, encode_response
from cliproxy.translate.gemini.schema import schema_from_gemini, schema_to_gemini
from cliproxy.translate.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder
from cliproxy.translate.gemini.usage import usage_of, usage_of_event
from cliproxy.translate.tool_names import GEMINI_NAMES

__all__ = [
    "CODEC",
    "SKIP_SIGNATURE",
    "GeminiStreamDecoder",
    "GeminiStreamEncoder",
    "schema_from_gemini",
    "schema_to_gemini",
]

CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=GeminiStreamDecoder,
    stream_encoder=GeminiStreamEncoder,
    set_reasoning=set_reasoning,
    usage_field="usageMetadata",
    usage_of=usage_of,
    usage_of_event=usage_of_event,
    native_input_tokens=whole_prompt,
    error_object=error_object,
    stream_error_frame=stream_error_frame,
    tool_names=GEMINI_NAMES,
)
