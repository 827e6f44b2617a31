"""A fake of the upstream APIs behind the passthrough routes: compact, alpha search, images, Interactions.

It serves them where OpenAI-shaped APIs have them (`/v1/...`), where the ChatGPT Codex backend
has them (`/backend-api/codex/...`) and where Google has the Interactions API
(`/v1beta/interactions`), answering in each API's own shape (a Responses compaction, an images
list, an Interaction or its SSE events). Every request is recorded; an image edit's multipart
form is parsed so a test can see its fields and file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.upstreams import Seen

COMPACTED = {
    "id": "cmp_fake1",
    "object": "response.compaction",
    "created_at": 1795320731,
    "output": [{"type": "compaction", "id": "cmp_item1", "encrypted_content": "opaque-summary"}],
    "usage": {
        "input_tokens": 40,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 45,
    },
}
IMAGES = {"created": 1795320731, "data": [{"b64_json": "aW1hZ2U="}], "output_format": "png"}
INTERACTION = {
    "id": "v1_interaction_1",
    "status": "completed",
    "model": "gemini-2.5-flash",
    "steps": [{"type": "model_output", "content": [{"type": "text", "text": "Hello from interactions"}]}],
    "usage": {"total_input_tokens": 5, "total_output_tokens": 3, "total_tokens": 8},
}
INTERACTION_EVENTS = [
    ("interaction.created", {"event_type": "interaction.created", "interaction": {"id": "v1_interaction_1",
                                                                                  "status": "in_progress"}}),
    ("step.start", {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}}),
    ("step.delta", {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "Hello from"}}),
    ("step.delta", {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": " interactions"}}),
    ("step.stop", {"event_type": "step.stop", "index": 0}),
    ("interaction.completed", {"event_type": "interaction.completed", "interaction": INTERACTION}),
]  # fmt: skip


@dataclass
class FormSeen:
    fields: dict[str, str]
    files: dict[str, bytes]


@dataclass
class FakeRoutes:
    seen: list[Seen] = field(default_factory=list)
    forms: list[FormSeen] = field(default_factory=list)
    refuse_status: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        for prefix in ("/v1", "/backend-api/codex"):
            r.add_post(f"{prefix}/responses/compact", self.compact)
            r.add_post(f"{prefix}/alpha/search", self.search)
        r.add_post("/v1/images/generations", self.images)
        r.add_post("/v1/images/edits", self.image_edits)
        r.add_post("/v1beta/interactions", self.interactions)
        return app

    async def _record(self, request: web.Request) -> Seen:
        body = await request.read()
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        self.seen.append(seen)
        return seen

    def _refused(self) -> web.Response | None:
        if self.refuse_status is None:
            return None
        error = {"error": {"message": "fake refusal", "type": "invalid_request_error", "code": None}}
        return web.json_response(error, status=self.refuse_status)

    async def compact(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        body = seen.json
        if not isinstance(body, dict) or not body.get("model") or "stream" in body:
            return web.json_response({"error": {"message": "bad compact request"}}, status=400)
        return self._refused() or web.json_response(COMPACTED)

    async def search(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        body = seen.json
        return self._refused() or web.json_response({"id": body.get("id"), "results": [{"title": "found it"}]})

    async def images(self, request: web.Request) -> web.Response:
        seen = await self._record(request)
        if not seen.json.get("prompt"):
            return web.json_response({"error": {"message": "prompt is required"}}, status=400)
        return self._refused() or web.json_response(IMAGES)

    async def image_edits(self, request: web.Request) -> web.Response:
        form = await request.post()  # (the form is read once: the recorded body stays empty)
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), b""))
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        files = {k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)}
        self.forms.append(FormSeen(fields, files))
        if not files or not fields.get("prompt"):
            return web.json_response({"error": {"message": "image and prompt are required"}}, status=400)
        return web.json_response(IMAGES)

    async def interactions(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        body = seen.json
        if not isinstance(body, dict) or ("model" in body) == ("agent" in body):
            return web.json_response({"error": {"code": 400, "message": "bad interaction"}}, status=400)
        refused = self._refused()
        if refused is not None:
            return refused
        if not body.get("stream"):
            return web.json_response(INTERACTION)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for name, data in INTERACTION_EVENTS:
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        await response.write_eof()
        return response
