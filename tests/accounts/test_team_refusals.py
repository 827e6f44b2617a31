"""A member's key refused by its team, in each of the four dialects through the official SDKs: a
paused or suspended team, a team out of credits or budget and a model outside the team's access
groups are 403 naming the reason (or the model); a revoked or unknown key is 401."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.accounts.helpers import PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Proxy, Starter
from tests.fakes.upstreams import FakeUpstream

DIALECTS = ("chat", "responses", "claude", "gemini")


async def ask(proxy: Proxy, dialect: str, key: str, model: str) -> str:
    """One minimal request in `dialect` through its official SDK; the answer's text."""
    if dialect in ("chat", "responses"):
        oa = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
        if dialect == "chat":
            answer = await oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            return answer.choices[0].message.content or ""
        response = await oa.responses.create(model=model, input="hi")
        return response.output_text
    if dialect == "claude":
        an = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=key, max_retries=0)
        message = await an.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        return "".join(block.text for block in message.content if block.type == "text")
    client = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=proxy.url, api_version="v1beta"))
    reply = await client.aio.models.generate_content(model=model, contents="hi")
    return reply.text or ""


async def refused(proxy: Proxy, dialect: str, key: str, model: str) -> tuple[int, str]:
    """(status, message) of a refused request, read from the SDK's own exception."""
    with pytest.raises(Exception) as info:
        await ask(proxy, dialect, key, model)
    exc: Any = info.value
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return exc.status_code, str(body.get("message"))
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        assert body.get("type") == "error"
        return exc.status_code, str(body["error"]["message"])
    assert isinstance(exc, genai_errors.APIError), exc
    return exc.code, str(exc.message)


async def member_key(proxy: Proxy, admin: Admin, email: str, models: list[str] | None = None) -> tuple[Browser, str]:
    user = {"email": email, "role": "user", "team": "eng", "password": PASSWORD}
    await admin.call("POST", "/users", user, expect=201)
    browser = Browser(proxy)
    await browser.sign_in(email)
    _, made = await browser.call("POST", "/keys", {"name": "main", "models": models}, expect=201)
    return browser, made["key"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_team_refusals_in_every_dialect(
    dialect: str, upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.team("eng", {"mini": ["gpt-4o-mini"]}, **{"access-groups": ["mini"], "budget-credits": 1000})
    browser, key = await member_key(proxy, admin, "carol@example.com")

    assert await ask(proxy, dialect, key, "gpt-4o-mini") == "Hello from fake"

    status, message = await refused(proxy, dialect, key, "gpt-4o")
    assert status == 403 and "'gpt-4o'" in message and "access groups of team 'eng'" in message

    await admin.call("PATCH", "/teams/eng", {"state": "paused"}, expect=200)
    status, message = await refused(proxy, dialect, key, "gpt-4o-mini")
    assert status == 403 and "team paused" in message

    await admin.call("PATCH", "/teams/eng", {"state": "suspended"}, expect=200)
    status, message = await refused(proxy, dialect, key, "gpt-4o-mini")
    assert status == 403 and "team suspended" in message

    await admin.call("PATCH", "/teams/eng", {"state": "active", "budget-credits": 0.0001}, expect=200)
    status, message = await refused(proxy, dialect, key, "gpt-4o-mini")
    assert status == 403 and "insufficient credits" in message

    await admin.call("PATCH", "/teams/eng", {"budget-credits": None, "budget-usd": 0.0000001}, expect=200)
    status, message = await refused(proxy, dialect, key, "gpt-4o-mini")
    assert status == 403 and "team budget exhausted" in message

    await browser.call("DELETE", "/keys/main", expect=200)
    status, message = await refused(proxy, dialect, key, "gpt-4o-mini")
    assert status == 401
    status, _ = await refused(proxy, dialect, "sk-cp-never-issued-0000", "gpt-4o-mini")
    assert status == 401
    assert len(fake.seen) == 1  # no refused request reached the upstream
    await browser.close()


async def test_key_limits_stay_within_the_team_ceiling(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    ceiling = {"max-budget-usd": 5, "max-requests-per-minute": 10}
    await admin.team("eng", {"mini": ["gpt-4o-mini"]}, **{"access-groups": ["mini"], "key-ceiling": ceiling})
    user = {"email": "dan@example.com", "role": "user", "team": "eng", "password": PASSWORD}
    await admin.call("POST", "/users", user, expect=201)
    dan = Browser(proxy)
    await dan.sign_in("dan@example.com")
    status, data = await dan.call("POST", "/keys", {"name": "big", "limits": {"max-budget-usd": 50}})
    assert status == 403 and "per-key ceiling" in data["error"]
    status, data = await dan.call("POST", "/keys", {"name": "wide", "models": ["gpt-4o"]})
    assert status == 403 and "access groups" in data["error"]
    _, made = await dan.call("POST", "/keys", {"name": "ok", "limits": {"max-budget-usd": 2}}, expect=201)
    assert made["max-budget-usd"] == 2 and made["max-requests-per-minute"] == 10  # the ceiling where none was asked
    for _ in range(10):
        assert await ask(proxy, "chat", made["key"], "gpt-4o-mini") == "Hello from fake"
    status, message = await refused(proxy, "chat", made["key"], "gpt-4o-mini")
    assert status == 429 and "10 requests per minute" in message
    await dan.close()
