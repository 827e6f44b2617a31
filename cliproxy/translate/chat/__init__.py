"""OpenAI Chat Completions ⇄ IR: requests, answers, `data:` streams ending in `[DONE]`, errors, usage."""

from __future__ import annotations

from cliproxy.translate.chat.errors import error_object, stream_error_frame
from cliproxy.translate.chat.request import decode_request, encode_request, set_reasoning
from cliproxy.translate.chat.response import decode_response, encode_response
from cliproxy.translate.chat.stream import ChatStreamDecoder, ChatStreamEncoder
from cliproxy.translate.chat.usage import usage_of, usage_of_event
from cliproxy.translate.codec import Codec, whole_prompt
from cliproxy.translate.tool_names import OPENAI_NAMES

__all__ = ["CODEC", "ChatStreamDecoder", "ChatStreamEncoder"]

CODEC = Codec(
    decode_request=decode_request,
    encode_request=encode_request,
    decode_response=decode_response,
    encode_response=encode_response,
    stream_decoder=ChatStreamDecoder,
    stream_encoder=ChatStreamEncoder,
    set_reasoning=set_reasoning,
    usage_field="usage",
    usage_of=usage_of,
    usage_of_event=usage_of_event,
    native_input_tokens=whole_prompt,
    error_object=error_object,
    stream_error_frame=stream_error_frame,
    tool_names=OPENAI_NAMES,
)
