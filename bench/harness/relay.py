"""The floor: a minimal aiohttp relay doing only what any OpenAI-compatible Python proxy must do.

Client-key check, a JSON parse of the request (model, stream), a round-robin upstream key, one
shared `ClientSession`, and streamed bytes relayed as they arrive. Same as
`../shared/bench/mini_proxy.py --uvloop`, so our ratio against it is comparable across runs.

Usage: `python bench/harness/relay.py --port 18101 --upstream http://127.0.0.1:18000`
"""

from __future__ import annotations

import argparse
import itertools
import json

import uvloop
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

CLIENT_KEYS = {"sk-bench-client"}
UPSTREAM_KEYS = itertools.cycle(["sk-up-1", "sk-up-2", "sk-up-3"])
HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
SESSION = web.AppKey("session", ClientSession)
URL = web.AppKey("url", str)


async def chat(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization", "")[7:] not in CLIENT_KEYS:
        return web.json_response({"error": {"message": "invalid api key"}}, status=401)
    body = await request.read()
    try:
        payload = json.loads(body)
        stream = bool(payload.get("stream")) and bool(payload["model"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": {"message": "bad request"}}, status=400)
    headers = {"Authorization": "Bearer " + next(UPSTREAM_KEYS), "Content-Type": "application/json"}
    async with request.app[SESSION].post(request.app[URL], data=body, headers=headers) as up:
        out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
        if not stream or up.status != 200:
            return web.Response(body=await up.read(), status=up.status, headers=out_headers)
        resp = web.StreamResponse(status=up.status, headers=out_headers)
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    connector = TCPConnector(limit=0, ttl_dns_cache=None)
    timeout = ClientTimeout(total=None, sock_connect=10)
    async with ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        app[SESSION] = session
        yield


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18101)
    parser.add_argument("--upstream", default="http://127.0.0.1:18000")
    args = parser.parse_args()
    app = web.Application()
    app[URL] = args.upstream.rstrip("/") + "/v1/chat/completions"
    app.router.add_post("/v1/chat/completions", chat)
    app.cleanup_ctx.append(session_ctx)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
