"""Documents, audio, video and image detail reach the upstream under their own label, through the proxy.

A PDF stays a document (Claude `document`, chat `file`, Responses `input_file`, Gemini inline data
of its MIME type), audio stays audio (chat `input_audio` ⇄ Gemini inline `audio/*`), and never
becomes an image. Where a target cannot take a part at all, a short text marker takes its place:

- audio → Claude and Responses (neither takes audio), and audio other than wav/mp3 → chat;
- video → Claude, chat and Responses;
- a file id from another provider's store → any other provider (OpenAI ids to Claude and Gemini);
- a document by URL → chat (chat takes files inline or by OpenAI id only).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.genai import types

from cliproxy.translate import Dialect
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream
from tests.translate.clients import (
    MP4,
    PDF,
    PNG,
    WAV,
    received,
    send_chat,
    send_claude,
    send_gemini,
    send_responses,
)
from tests.translate.test_proxy_matrix import upstream_config

Upstream = tuple[FakeUpstream, str]
PDF_URL = "https://example.com/report.pdf"


def user_parts(target: Dialect, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every content part of every user turn the upstream received, in its own shape."""
    if target is Dialect.GEMINI:
        return [p for c in body["contents"] if c["role"] == "user" for p in c["parts"]]
    if target is Dialect.RESPONSES:
        items = body["input"]
        return [p for i in items if i.get("role") == "user" for p in i["content"]]
    messages = [m for m in body["messages"] if m["role"] == "user"]
    return [p for m in messages if isinstance(m["content"], list) for p in m["content"]]


def markers(parts: list[dict[str, Any]]) -> list[str]:
    return [p["text"] for p in parts if "omitted" in str(p.get("text", ""))]


async def send_pdf(client: Dialect, proxy: Any) -> None:
    if client is Dialect.CLAUDE:
        doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}
        await send_claude(proxy, [{"role": "user", "content": [{"type": "text", "text": "summarise"}, doc]}])
    elif client is Dialect.CHAT:
        file = {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}
        content = [{"type": "text", "text": "summarise"}, {"type": "file", "file": file}]
        await send_chat(proxy, [{"role": "user", "content": content}])
    elif client is Dialect.RESPONSES:
        file = {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}
        await send_responses(proxy, [{"role": "user", "content": [{"type": "input_text", "text": "summarise"}, file]}])
    else:
        blob = types.Blob(mime_type="application/pdf", data=base64.b64decode(PDF))
        parts = [types.Part(text="summarise"), types.Part(inline_data=blob)]
        await send_gemini(proxy, [types.Content(role="user", parts=parts)])


def pdf_received(target: Dialect, parts: list[dict[str, Any]]) -> str:
    """The base64 of the one PDF the upstream received, found where its dialect puts documents."""
    if target is Dialect.CLAUDE:
        (doc,) = [p for p in parts if p["type"] == "document"]
        assert doc["source"]["media_type"] == "application/pdf"
        return str(doc["source"]["data"])
    if target is Dialect.CHAT:
        (file,) = [p["file"] for p in parts if p["type"] == "file"]
        assert file["file_data"].startswith("data:application/pdf;base64,") and file["filename"]
        return str(file["file_data"].split(",", 1)[1])
    if target is Dialect.RESPONSES:
        (file,) = [p for p in parts if p["type"] == "input_file"]
        assert file["file_data"].startswith("data:application/pdf;base64,")
        return str(file["file_data"].split(",", 1)[1])
    (blob,) = [p["inlineData"] for p in parts if "inlineData" in p]
    assert blob["mimeType"] == "application/pdf"
    return str(blob["data"])


PAIRS = [(a, b) for a in Dialect for b in Dialect if a is not b]


@pytest.mark.parametrize(("client", "target"), PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS])
async def test_pdf_documents_stay_documents(
    upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    await send_pdf(client, proxy)
    parts = user_parts(target, received(fake))
    assert pdf_received(target, parts) == PDF
    assert not markers(parts)


async def send_audio(client: Dialect, proxy: Any, media: str = "audio/wav") -> None:
    if client is Dialect.CHAT:
        audio = {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
        await send_chat(proxy, [{"role": "user", "content": [{"type": "text", "text": "transcribe"}, audio]}])
    else:
        blob = types.Blob(mime_type=media, data=base64.b64decode(WAV))
        parts = [types.Part(text="transcribe"), types.Part(inline_data=blob)]
        await send_gemini(proxy, [types.Content(role="user", parts=parts)])


@pytest.mark.parametrize(
    ("client", "target"),
    [(Dialect.CHAT, Dialect.GEMINI), (Dialect.GEMINI, Dialect.CHAT)],
    ids=["chat->gemini", "gemini->chat"],
)
async def test_audio_stays_audio(upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    await send_audio(client, proxy, "audio/wav")
    parts = user_parts(target, received(fake))
    if target is Dialect.GEMINI:
        assert [p["inlineData"] for p in parts if "inlineData" in p] == [{"mimeType": "audio/wav", "data": WAV}]
    else:
        assert [p for p in parts if p["type"] != "text"] == [
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
        ]


MARKED = [
    ("audio", Dialect.CHAT, Dialect.CLAUDE),
    ("audio", Dialect.CHAT, Dialect.RESPONSES),
    ("audio", Dialect.GEMINI, Dialect.CLAUDE),
    ("audio", Dialect.GEMINI, Dialect.RESPONSES),
    ("ogg", Dialect.GEMINI, Dialect.CHAT),
    ("video", Dialect.GEMINI, Dialect.CLAUDE),
    ("video", Dialect.GEMINI, Dialect.CHAT),
    ("video", Dialect.GEMINI, Dialect.RESPONSES),
    ("file_id", Dialect.CHAT, Dialect.CLAUDE),
    ("file_id", Dialect.RESPONSES, Dialect.GEMINI),
    ("pdf_url", Dialect.RESPONSES, Dialect.CHAT),
]


@pytest.mark.parametrize(("what", "client", "target"), MARKED, ids=[f"{w}:{a.value}->{b.value}" for w, a, b in MARKED])
async def test_what_a_target_cannot_take_becomes_a_marker_never_an_image(
    upstream: Upstream, start_proxy: Starter, what: str, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    if what in ("audio", "ogg"):
        await send_audio(client, proxy, "audio/ogg" if what == "ogg" else "audio/wav")
    elif what == "video":
        blob = types.Blob(mime_type="video/mp4", data=base64.b64decode(MP4))
        parts = [types.Part(text="describe"), types.Part(inline_data=blob)]
        await send_gemini(proxy, [types.Content(role="user", parts=parts)])
    elif what == "file_id" and client is Dialect.CHAT:
        content = [{"type": "text", "text": "summarise"}, {"type": "file", "file": {"file_id": "file-abc123"}}]
        await send_chat(proxy, [{"role": "user", "content": content}])
    elif what == "file_id":
        file = {"type": "input_file", "file_id": "file-abc123"}
        await send_responses(proxy, [{"role": "user", "content": [{"type": "input_text", "text": "summarise"}, file]}])
    else:
        file = {"type": "input_file", "file_url": PDF_URL}
        await send_responses(proxy, [{"role": "user", "content": [{"type": "input_text", "text": "summarise"}, file]}])
    parts = user_parts(target, received(fake))
    assert len(markers(parts)) == 1
    images = [p for p in parts if p.get("type") in ("image", "image_url", "input_image") or "inlineData" in p]
    assert images == [], "audio, video and foreign files are never sent as images"


@pytest.mark.parametrize("target", [Dialect.CLAUDE, Dialect.GEMINI])
async def test_documents_by_url_stay_links(upstream: Upstream, start_proxy: Starter, target: Dialect) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    file = {"type": "input_file", "file_url": PDF_URL}
    await send_responses(proxy, [{"role": "user", "content": [{"type": "input_text", "text": "summarise"}, file]}])
    parts = user_parts(target, received(fake))
    if target is Dialect.CLAUDE:
        assert [p for p in parts if p["type"] == "document"] == [
            {"type": "document", "source": {"type": "url", "url": PDF_URL}}
        ]
    else:
        assert [p["fileData"] for p in parts if "fileData" in p] == [
            {"mimeType": "application/pdf", "fileUri": PDF_URL}
        ]


async def test_openai_file_ids_pass_between_openai_dialects(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.RESPONSES, base))
    content = [{"type": "text", "text": "summarise"}, {"type": "file", "file": {"file_id": "file-abc123"}}]
    await send_chat(proxy, [{"role": "user", "content": content}])
    parts = user_parts(Dialect.RESPONSES, received(fake))
    assert {"type": "input_file", "file_id": "file-abc123"} in parts


@pytest.mark.parametrize(
    ("client", "target"), [(Dialect.CHAT, Dialect.RESPONSES), (Dialect.RESPONSES, Dialect.CHAT)], ids=str
)
async def test_image_detail_survives(
    upstream: Upstream, start_proxy: Starter, client: Dialect, target: Dialect
) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(target, base))
    url = f"data:image/png;base64,{PNG}"
    if client is Dialect.CHAT:
        image = {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
        await send_chat(proxy, [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}])
    else:
        image = {"type": "input_image", "image_url": url, "detail": "high"}
        await send_responses(proxy, [{"role": "user", "content": [{"type": "input_text", "text": "what?"}, image]}])
    parts = user_parts(target, received(fake))
    if target is Dialect.RESPONSES:
        assert [p["detail"] for p in parts if p["type"] == "input_image"] == ["high"]
    else:
        assert [p["image_url"]["detail"] for p in parts if p["type"] == "image_url"] == ["high"]


async def test_plain_text_documents_reach_openai_as_text(upstream: Upstream, start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(upstream_config(Dialect.CHAT, base))
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "the notes"}}
    await send_claude(proxy, [{"role": "user", "content": [{"type": "text", "text": "summarise"}, doc]}])
    parts = user_parts(Dialect.CHAT, received(fake))
    assert {"type": "text", "text": "the notes"} in parts
