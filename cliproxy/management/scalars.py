"""Scalar settings: `GET` returns `{"<yaml-key>": value}`, `PUT`/`PATCH` take `{"value": <typed>}`.

A missing or mistyped `value` is 400 `{"error":"invalid body"}` (as in CLIProxyAPI); a value the config
schema refuses (say a proxy URL with an unknown scheme) is 422 `invalid_config`, file untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cliproxy.config.model import STRATEGY_SPELLINGS, Config
from cliproxy.management.config_writer import ConfigDoc, config_writer
from cliproxy.management.guard import require_admin
from cliproxy.management.http import OK, api_error, json_response, read_json
from cliproxy.server.services import SERVICES

routes = web.RouteTableDef()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Scalar:
    """One setting: its URL path, YAML path, JSON type and how a written value is normalised."""

    url: str
    kind: type
    default: Any
    normalise: Callable[[Any], Any] | None = None
    response_key: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.url.split("/"))

    @property
    def key(self) -> str:
        return self.response_key or self.path[-1]


def _at_least(floor: int, replacement: int) -> Callable[[Any], Any]:
    return lambda v: replacement if v < floor else v


SCALARS: tuple[Scalar, ...] = (
    Scalar("debug", bool, False),
    Scalar("logging-to-file", bool, False),
    Scalar("logs-max-total-size-mb", int, 0, _at_least(0, 0)),
    Scalar("error-logs-max-files", int, 10, _at_least(0, 10)),
    Scalar("usage-statistics-enabled", bool, False),
    Scalar("proxy-url", str, "", str.strip),
    Scalar("request-log", bool, False),
    Scalar("ws-auth", bool, True),
    Scalar("request-retry", int, 0),
    Scalar("max-retry-credentials", int, 0),
    Scalar("max-retry-interval", int, 0),
    Scalar("force-model-prefix", bool, False),
    Scalar("passthrough-headers", bool, False),
    Scalar("disable-cooling", bool, False),
    Scalar("quota-exceeded/switch-project", bool, True),
    Scalar("quota-exceeded/switch-preview-model", bool, True),
)


def current_value(config: Config, path: tuple[str, ...], default: Any) -> Any:
    """The live value at a YAML path, whether the schema models it or keeps it as an extra key."""
    data: Any = config.model_dump(mode="json", by_alias=True)
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return default if data is None else data


def typed_value(body: Any, kind: type) -> Any:
    """`body["value"]` when it has JSON type `kind` (bools are not ints), else 400 `invalid body`."""
    if not isinstance(body, dict) or "value" not in body:
        raise api_error(400, "invalid body")
    value = body["value"]
    ok = isinstance(value, int) and not isinstance(value, bool) if kind is int else isinstance(value, kind)
    if not ok:
        raise api_error(400, "invalid body")
    return value


async def write_scalar(request: web.Request, path: tuple[str, ...], value: Any) -> web.Response:
    def mutate(doc: ConfigDoc) -> None:
        doc.set(path, value)

    await config_writer(request).update(mutate)
    return json_response(OK)


def _getter(spec: Scalar) -> Handler:
    async def get(request: web.Request) -> web.Response:
        config = request.config_dict[SERVICES].holder.current.config
        return json_response({spec.key: current_value(config, spec.path, spec.default)})

    return get


def _setter(spec: Scalar) -> Handler:
    async def put(request: web.Request) -> web.Response:
        require_admin(request)
        value = typed_value(await read_json(request), spec.kind)
        if spec.normalise is not None:
            value = spec.normalise(value)
        return await write_scalar(request, spec.path, value)

    return put


for _spec in SCALARS:
    routes.get(f"/{_spec.url}")(_getter(_spec))
    routes.put(f"/{_spec.url}")(_setter(_spec))
    routes.patch(f"/{_spec.url}")(_setter(_spec))


@routes.delete("/proxy-url")
async def delete_proxy_url(request: web.Request) -> web.Response:
    require_admin(request)
    return await write_scalar(request, ("proxy-url",), "")


@routes.get("/routing/strategy")
async def get_strategy(request: web.Request) -> web.Response:
    return json_response({"strategy": request.config_dict[SERVICES].holder.current.config.routing.strategy})


@routes.put("/routing/strategy")
@routes.patch("/routing/strategy")
async def put_strategy(request: web.Request) -> web.Response:
    require_admin(request)
    value = typed_value(await read_json(request), str)
    canonical = STRATEGY_SPELLINGS.get(value.strip().lower())
    if canonical is None:
        raise api_error(400, "invalid strategy")
    return await write_scalar(request, ("routing", "strategy"), canonical)
