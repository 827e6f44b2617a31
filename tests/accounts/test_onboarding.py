"""The self-serve path through the running proxy: an admin invites, the user onboards with a
password, signs in, makes a key, uses it from the openai SDK and sees the spend as that user; the
admin sees it per user and per team."""

from __future__ import annotations

import openai

from tests.accounts.helpers import PASSWORD, Admin, Browser, config
from tests.fakes.fixtures import Starter
from tests.fakes.upstreams import FakeUpstream


async def test_invitation_to_key_to_spend(upstream: tuple[FakeUpstream, str], start_proxy: Starter) -> None:
    fake, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.team("eng", {"gpt": ["gpt-4o*"]}, **{"access-groups": ["gpt"], "budget-credits": 1000})
    token = await admin.invite("Alice@Example.com", "user", "eng")

    onboarding = Browser(proxy)
    _, seen = await onboarding.call("POST", "/invitations/lookup", {"token": token}, expect=200)
    assert seen["email"] == "alice@example.com" and seen["team"] == "eng" and seen["role"] == "user"
    accepted = await onboarding.accept(token)
    assert accepted["user"]["email"] == "alice@example.com"
    assert "password_hash" not in accepted["user"]
    await onboarding.close()

    alice = Browser(proxy)
    await alice.sign_in("alice@example.com", PASSWORD)
    _, me = await alice.call("GET", "/me", expect=200)
    assert me["user"]["role"] == "user" and me["team"]["name"] == "eng" and me["models"] == ["gpt-4o*"]
    assert me["may_create_keys"] is True

    _, made = await alice.call("POST", "/keys", {"name": "laptop", "models": ["gpt-4o-mini"]}, expect=201)
    key = made["key"]
    assert key.startswith("sk-cp-") and made["team"] == "eng"

    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    assert fake.seen

    _, mine = await alice.call("GET", "/keys", expect=200)
    (listed,) = mine["keys"]
    assert listed["name"] == "laptop" and "key" not in listed
    assert listed["usage"]["requests_this_period"] == 1
    assert mine["totals"]["cost_usd_this_period"] > 0
    _, usage = await alice.call("GET", "/usage", expect=200)
    assert usage["totals"]["requests_this_period"] == 1
    assert sum(day["requests"] for day in usage["days"]) == 1
    _, team = await alice.call("GET", "/team", expect=200)
    assert team["team"]["requests_this_period"] == 1
    assert 0 < team["team"]["credits_used_this_period"] < 1000
    assert team["team"]["remaining_credits"] < 1000

    users = await admin.call("GET", "/users", expect=200)
    (row,) = users["users"]
    assert row["email"] == "alice@example.com" and row["keys"] == 1
    assert row["spend"]["requests_this_period"] == 1
    teams = await admin.call("GET", "/teams", expect=200)
    assert teams["teams"][0]["members"] == ["alice@example.com"]
    assert teams["teams"][0]["status"]["requests_this_period"] == 1
    await alice.close()


async def test_plain_config_keys_keep_working_beside_users(
    upstream: tuple[FakeUpstream, str], start_proxy: Starter
) -> None:
    _, base = upstream
    proxy = await start_proxy(config(base))
    admin = Admin(proxy)
    await admin.call("POST", "/users", {"email": "bob@example.com", "role": "user", "password": PASSWORD}, expect=201)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-plain-config-key-0001", max_retries=0)
    answer = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello from fake"
    bad = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="sk-nobody-knows-this", max_retries=0)
    try:
        await bad.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("an unknown key was accepted")
