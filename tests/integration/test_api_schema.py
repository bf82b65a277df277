"""Property-based: schemathesis over /api/v1, from the app's own OpenAPI document, in process.

Every request carries a real org's API key, and that org has data (a channel, webhooks, a bot
with a capture, a conversation with its message and delivery), so the cases get past
authentication; half of them get the ids of those objects (and a usable URL and channel) in place
of generated ones, so they also get past the 404s and 422s to the routes' real work.
Valid and invalid input (schemathesis's coverage phase, then positive and negative fuzzing) must
never answer 5xx, and every answer must be one the document describes: its status code, content
type and body schema. Both backends: PostgreSQL refuses some input that SQLite takes (NUL).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from convohook.config import Settings
from convohook.meta import notifications as n
from convohook.meta.signature import sign_body
from convohook.storage.base import Storage
from convohook.usecases.orgs import create_org
from convohook.usecases.processing import ProcessingPolicy, process_pending
from convohook.web.app import create_app

pytestmark = pytest.mark.slow

ACCOUNT = "17841400000000009"
SECRET = "schema-test-app-secret"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",  # valid and invalid input
            # Fuzzed cases per operation (after the coverage phase's own, deterministic set):
            # bounded, so that the file takes well under a minute on both backends.
            "max-examples": 30,
            "deterministic": True,  # the same cases on every run, in CI too
            "database": "none",  # no example database: nothing carried over between runs
        },
    }
)


@dataclass(frozen=True)
class Seeded:
    api_key: str
    ids: dict[str, str]  # a path parameter's name -> the id of one of the org's objects
    channel_id: str
    doomed_webhook_id: str  # the one DELETE may remove, so the others keep being reachable


def _seed(client: asgi.ASGIClient, storage: Storage, api_key: str) -> Seeded:
    auth = {"Authorization": f"Bearer {api_key}"}

    def ok(method: str, path: str, body: Any = None) -> Any:
        response = client.request(method, path, json=body, headers=auth)
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
    # A customer's DM, received and processed (no worker runs): a contact, a conversation, its
    # message, and (no profile to wait for) the opening's delivery to both webhooks.
    body = n.encode(
        n.notification([n.entry(ACCOUNT, [n.text_message("900", ACCOUNT, "m-1", 1, "hi")])])
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
    [conversation] = ok("GET", "/api/v1/conversations")["items"]
    ids = {
        "webhook_id": webhook["id"],
        "bot_id": bot["id"],
        "conversation_id": conversation["id"],
    }
    [delivery, *_] = ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries")["items"]
    ids["delivery_id"] = delivery["id"]
    return Seeded(api_key, ids, channel["id"], doomed["id"])


@pytest.fixture
def seeded_app(storage: Storage, database_url_for: str) -> Iterator[tuple[FastAPI, Seeded]]:
    """The app on a fresh database of the backend, its lifespan started, its org seeded."""
    with storage.transaction() as tx:
        org = create_org(tx, "Acme", 1)
    app = create_app(_settings(database_url_for), workers=False)
    try:
        with asgi.get_client(app) as client:  # starts the lifespan, kept until shut down below
            seeded = _seed(client, storage, org.api_key)
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


def _aim_at_real_objects(case: schemathesis.Case, seeded: Seeded) -> None:
    """For half the cases (a function of the case, so that Hypothesis replays it alike), the
    org's real ids and a usable URL in place of generated ones: to reach past the 404s and 422s."""
    if zlib.crc32(repr((case.path_parameters, case.body, case.query)).encode()) % 2:
        return
    real = dict(seeded.ids)
    if case.method.upper() == "DELETE":
        real["webhook_id"] = seeded.doomed_webhook_id
    for name in case.path_parameters or {}:
        if name in real:
            case.path_parameters[name] = real[name]
    if isinstance(case.body, dict):
        if isinstance(case.body.get("channel_ids"), list):
            case.body["channel_ids"] = [seeded.channel_id]
        if isinstance(case.body.get("url"), str):
            case.body["url"] = "https://example.com/hook"


# The document (what /api/openapi.json serves) does not depend on the database: read it from an
# app that never starts. Loaded at import, one test per operation; `schemathesis.pytest.
# from_fixture` would load it in a fixture instead, but it fails on pytest 9.2 (it sets
# `Function._nodeid`, which pytest no longer has).
schema = schemathesis.openapi.from_dict(
    create_app(_settings("sqlite:///unused.db"), workers=False).openapi(), config=CONFIG
).include(path_regex=r"^/api/v1/")


@schema.parametrize()
# The fixture is shared by an operation's examples on purpose: one seeded org and app for all.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_v1_conforms_to_its_openapi_document(
    case: schemathesis.Case, seeded_app: tuple[FastAPI, Seeded]
) -> None:
    app, seeded = seeded_app
    _aim_at_real_objects(case, seeded)
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {seeded.api_key}"}, checks=CHECKS
    )


def test_a_nul_in_a_path_or_query_parameter_is_a_422(seeded_app: tuple[FastAPI, Seeded]) -> None:
    """Schemathesis puts no NUL in URLs, but a client can (%00), and PostgreSQL cannot compare
    text with one: each of these was a 500 there (psycopg's DataError), and a 404 or 200 on
    SQLite. A 422 on both, naming the parameter; unauthenticated, still a 401."""
    app, seeded = seeded_app
    ids = seeded.ids
    auth = {"Authorization": f"Bearer {seeded.api_key}"}
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
    with asgi.get_client(app) as client:
        for url, parameter in cases.items():
            method = "POST" if url.endswith("/retry") else "GET"
            response = client.request(method, url, headers=auth)
            assert response.status_code == 422, (url, response.text)
            body = response.json()
            assert body["error"] == "validation_error"
            assert body["message"].startswith(f"{parameter}: must not contain NUL"), url
        assert client.get("/api/v1/webhooks/wh%00").status_code == 401
