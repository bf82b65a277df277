"""Property-based: schemathesis over /api/v1, from the app's own OpenAPI document, in process.

Every request carries a real org's API key (schemathesis's own bearer auth: it leaves the key out
of the cases that test a missing or wrong one), and that org has data (a channel, webhooks, a bot
with a capture, a conversation with its message and delivery), so the cases get past
authentication; half of them get the ids of those objects in place of generated ones, so they also
get past the 404s to the routes' real work.
Valid and invalid input (schemathesis's coverage phase, then positive and negative fuzzing) is
checked with every check schemathesis has: never a 5xx; every answer one the document describes
(status code, content type, headers, body schema); schema-valid input accepted and invalid input
refused; a missing or wrong key refused; an undocumented method answered 405 with the right
`Allow`. Both backends: PostgreSQL refuses some input that SQLite takes (NUL).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi

from convohook.config import Settings
from convohook.domain.ids import new_id
from convohook.domain.model import Org
from convohook.domain.payload import CustomerProfile
from convohook.meta import notifications as n
from convohook.meta.signature import sign_body
from convohook.storage.base import Storage
from convohook.usecases.bot_runs import carry_out_runs
from convohook.usecases.orgs import hash_api_key
from convohook.usecases.processing import ProcessingPolicy, process_pending
from convohook.usecases.profiles import (
    ProfileResult,
    apply_profile_results,
    claim_awaiting_profiles,
)
from convohook.web.app import create_app

pytestmark = pytest.mark.slow

ACCOUNT = "17841400000000009"
SECRET = "schema-test-app-secret"
# A fixed key: schemathesis puts it in the cases itself (config below), and so knows which
# cases lack it on purpose. The org that has it is made by the fixture.
API_KEY = "chk_SchemathesisFuzzesThisOrgOnly000001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
load_all_checks()
# Every check schemathesis has, none left out. Three of them judge a sequence of calls that
# schemathesis's own stateful runner records (use_after_free, ensure_resource_availability,
# object_level_authorization): with one case per test they have no history and find nothing,
# and test_app.py covers what they would (another org's ids are 404s on every route, a deleted
# webhook is a 404). They are kept so that a future schemathesis that can use them here does.
# Typed loosely: the registry holds check functions and check classes alike.
CHECKS: list[Any] = list(REGISTERED_CHECKS.get_all())
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"bearer": {"bearer": API_KEY}}},
        "generation": {
            "mode": "all",  # valid and invalid input
            # Fuzzed cases per operation (after the coverage phase's own, deterministic set):
            # bounded, so that each backend's run takes about half a minute.
            "max-examples": 30,
            "deterministic": True,  # the same cases on every run, in CI too
            "database": "none",  # no example database: nothing carried over between runs
        },
    }
)


@dataclass(frozen=True)
class Seeded:
    ids: dict[str, str]  # a path parameter's name -> the id of one of the org's objects
    channel_id: str
    doomed_webhook_id: str  # the one DELETE may remove, so the others keep being reachable
    journey_bot_id: str  # a journey, with runs: what a PATCH of conditions or actions needs
    doomed_bot_id: str


def _seed(client: asgi.ASGIClient, storage: Storage) -> Seeded:
    def ok(method: str, path: str, body: Any = None) -> Any:
        response = client.request(method, path, json=body, headers=AUTH)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()

    channel = ok(
        "POST",
        "/api/v1/channels",
        {"handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
    )
    webhook, doomed = (
        ok(
            "POST",
            "/api/v1/webhooks",
            {"name": name, "url": "http://127.0.0.1:9/hook", "channel_ids": [channel["id"]]},
        )
        for name in ("crm", "doomed")
    )
    bot = ok("POST", "/api/v1/bots", {"name": "capture"})
    assert client.post(bot["webhook_url"], json={"hello": "bot"}).status_code == 200
    doomed_bot = ok("POST", "/api/v1/bots", {"name": "doomed"})
    # Made before the DM, so that the DM gives it a run to list.
    journey = ok(
        "POST",
        "/api/v1/bots",
        {
            "name": "tagger",
            "trigger": "message.received",
            "actions": [{"type": "add_tags", "tags": ["lead"]}],
        },
    )
    # A customer's DM, received and processed (no worker runs): a contact, a conversation, its
    # message, and (no profile to wait for) the opening's delivery to both webhooks. Written
    # now, so that Instagram's reply window is open and a valid reply is accepted.
    now = int(time.time() * 1000)
    body = n.encode(
        n.notification([n.entry(ACCOUNT, [n.text_message("900", ACCOUNT, "m-1", now, "hi")])])
    )
    received = client.post(
        "/webhooks/instagram",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(SECRET, body),
        },
    )
    assert received.status_code == 200, received.text
    with storage.transaction() as tx:
        process_pending(tx, now_ms=2, limit=10, policy=ProcessingPolicy(profile_deadline_ms=0))
    with storage.transaction() as tx:
        # The customer's profile, found: the journey's run waits for it, as the event does.
        [waiting] = claim_awaiting_profiles(tx, now, now + 60_000, 10)
        apply_profile_results(tx, [ProfileResult(waiting, CustomerProfile("jane", "Jane"))], now)
    with storage.transaction() as tx:
        assert carry_out_runs(tx, clock=lambda: now, limit=10).runs == 1
    [conversation] = ok("GET", "/api/v1/conversations")["items"]
    ids = {
        "webhook_id": webhook["id"],
        "bot_id": bot["id"],
        "conversation_id": conversation["id"],
    }
    [delivery, *_] = ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries")["items"]
    ids["delivery_id"] = delivery["id"]
    # An available agent: round robin has someone to pick, and agent ids reach a real one.
    ids["agent_id"] = ok("POST", "/api/v1/agents", {"name": "Ada", "email": "ada@acme.test"})["id"]
    return Seeded(ids, channel["id"], doomed["id"], journey["id"], doomed_bot["id"])


@pytest.fixture
def seeded_app(storage: Storage, database_url_for: str) -> Iterator[tuple[FastAPI, Seeded]]:
    """The app on a fresh database of the backend, its lifespan started, its org seeded."""
    with storage.transaction() as tx:
        org = Org(id=new_id("org", 1), name="Acme", created_at_ms=1)
        tx.insert_org(org)
        tx.insert_api_key(new_id("key", 1), org.id, hash_api_key(API_KEY), 1)
    app = create_app(_settings(database_url_for), workers=False)
    try:
        with asgi.get_client(
            cast(Any, app)
        ) as client:  # starts the lifespan, kept until shut down below
            seeded = _seed(client, storage)
        yield app, seeded
    finally:
        asgi.shutdown_lifespans()


def _settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        meta_app_secret=SECRET,  # type: ignore[arg-type]
        # Fuzzed webhook URLs are never resolved (no DNS lookups from a test), and no worker
        # runs: nothing is ever sent. The API alone is under test.
        allow_private_targets=True,
        public_url="http://testserver",
    )


def _aim_at_real_objects(case: schemathesis.Case[Any], seeded: Seeded) -> None:
    """The org's real objects in place of generated ids, in the parts of the case generated
    valid (an invalid part stays as it is: it is what the case tests).

    Path ids for half the cases (a function of the case, so that Hypothesis replays it alike),
    to reach past the 404s. A valid body's nested ids always (channel_ids, in a webhook or in a
    bot's conditions, and an assign action's agent_id): another org's channel or agent, or one
    that does not exist, is refused (422) whatever the document says of the id's form, so only
    real ones show whether valid bodies are accepted."""
    meta = case.meta
    if meta is None:
        return
    heads = zlib.crc32(repr((case.path_parameters, case.body, case.query)).encode()) % 2 == 0
    body = case.body if isinstance(case.body, dict) else {}
    if case.path_parameters and heads and not meta.is_negative_at(ParameterLocation.PATH):
        real = dict(seeded.ids)
        if case.method.upper() == "DELETE":
            real["webhook_id"] = seeded.doomed_webhook_id
            real["bot_id"] = seeded.doomed_bot_id
        elif case.path.endswith("/runs") or body.get("conditions") or body.get("actions"):
            # A capture bot takes no conditions or actions (409) and has no runs.
            real["bot_id"] = seeded.journey_bot_id
        for name in case.path_parameters:
            if name in real:
                case.path_parameters[name] = real[name]
    if meta.is_negative_at(ParameterLocation.BODY):
        return
    if body.get("channel_ids"):
        body["channel_ids"] = [seeded.channel_id]
    if body.get("agent_id") and heads:
        body["agent_id"] = seeded.ids["agent_id"]
    conditions = body.get("conditions")
    if isinstance(conditions, dict) and conditions.get("channel_ids"):
        conditions["channel_ids"] = [seeded.channel_id]
    actions = body.get("actions")
    for action in actions if isinstance(actions, list) else ():
        if isinstance(action, dict) and action.get("agent_id"):
            action["agent_id"] = seeded.ids["agent_id"]


# The document (what /api/openapi.json serves) does not depend on the database: read it from an
# app that never starts. Loaded at import, one test per operation; `schemathesis.pytest.
# from_fixture` would load it in a fixture instead, but it fails on pytest 9.2 (it sets
# `Function._nodeid`, which pytest no longer has).
_DOCUMENTED = create_app(_settings("sqlite:///unused.db"), workers=False)
schema = schemathesis.openapi.from_dict(_DOCUMENTED.openapi(), config=CONFIG).include(
    path_regex=r"^/api/v1/"
)
# An ASGI app makes schemathesis send in process, the checks' own requests too (ignored_auth
# sends each operation again without credentials and with wrong ones). Every request names the
# app that serves it: the one started on the backend under test.
schema.app = _DOCUMENTED


@schema.parametrize()
# The fixture is shared by an operation's examples on purpose: one seeded org and app for all.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_v1_conforms_to_its_openapi_document(
    case: schemathesis.Case[Any], seeded_app: tuple[FastAPI, Seeded]
) -> None:
    app, seeded = seeded_app
    _aim_at_real_objects(case, seeded)
    case.call_and_validate(app=app, checks=CHECKS)


def test_every_check_schemathesis_has_is_run() -> None:
    names = {check.__name__ for check in CHECKS}
    assert names >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
    }
    assert len(names) == len(CHECKS) >= 14


def test_a_nul_in_a_path_or_query_parameter_is_a_422(seeded_app: tuple[FastAPI, Seeded]) -> None:
    """Schemathesis puts no NUL in URLs, but a client can (%00), and PostgreSQL cannot compare
    text with one: each of these was a 500 there (psycopg's DataError), and a 404 or 200 on
    SQLite. A 422 on both, naming the parameter; unauthenticated, still a 401."""
    app, seeded = seeded_app
    ids = seeded.ids
    cases = {
        "/api/v1/webhooks/wh%00": "webhook_id",
        "/api/v1/bots/%00/captures": "bot_id",
        "/api/v1/deliveries/%00/retry": "delivery_id",
        "/api/v1/channels?cursor=%00": "cursor",
        "/api/v1/contacts?handle=a%00": "handle",
        "/api/v1/conversations?channel_id=%00": "channel_id",
        f"/api/v1/conversations/{ids['conversation_id']}/messages?cursor=1:%00": "cursor",
        f"/api/v1/webhooks/{ids['webhook_id']}/deliveries?cursor=%00": "cursor",
    }
    with asgi.get_client(cast(Any, app)) as client:
        for url, parameter in cases.items():
            method = "POST" if url.endswith("/retry") else "GET"
            response = client.request(method, url, headers=AUTH)
            assert response.status_code == 422, (url, response.text)
            body = response.json()
            assert body["error"] == "validation_error"
            assert body["message"].startswith(f"{parameter}: must not contain NUL"), url
        assert client.get("/api/v1/webhooks/wh%00").status_code == 401
