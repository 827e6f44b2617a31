"""`/openapi.json` describes every route of the app, and only those: it cannot drift from the router.

When this fails after adding or removing a route, edit `cliproxy/data/openapi.json` (the message
lists the operations to add or remove)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import ProxyFactory, app_from_config, write_config

SPEC_FILE = "cliproxy/data/openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("cliproxy").joinpath("data/openapi.json").read_text())
    return data


def routed(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, sub-apps included; HEAD is GET's automatic twin."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from routed(resource.get_info()["app"])
            continue
        for route in resource:
            if route.method != "HEAD":
                yield route.method.lower(), resource.canonical


def described(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, item in document["paths"].items():
        for method in item.keys() & METHODS:
            yield method, path


def test_every_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    app = app_from_config(write_config(tmp_path, "api-keys: [sk-openapi-0001]\n"))
    routes, document = set(routed(app)), set(described(spec()))
    missing = sorted(routes - document)
    extra = sorted(document - routes)
    lines = [f"{SPEC_FILE} is out of step with the router:"]
    lines += [f"  add     {method.upper():6s} {path}" for method, path in missing]
    lines += [f"  remove  {method.upper():6s} {path}" for method, path in extra]
    assert not missing and not extra, "\n".join(lines)


def test_every_operation_has_a_summary_responses_and_its_path_parameters() -> None:
    document = spec()
    assert document["openapi"].startswith("3.")
    schemes = document["components"]["securitySchemes"].keys()
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method in item.keys() & METHODS:
            operation = item[method]
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("responses"), where
            declared = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"}
            assert declared == names, where
            for requirement in operation.get("security", ()):
                assert requirement.keys() <= schemes, where
            for answer in operation["responses"].values():
                ref = answer.get("$ref")
                if ref:
                    assert ref.removeprefix("#/components/responses/") in document["components"]["responses"], where


async def test_served_as_json(proxy: ProxyFactory) -> None:
    server = await proxy("api-keys: [sk-openapi-0001]\n")
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/openapi.json")) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.json() == spec()
