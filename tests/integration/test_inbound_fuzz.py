"""Hostile input on Meta's endpoint (issue 7), through the whole HTTP stack: whatever arrives,
the answer is a 2xx or a 4xx with a message, never a 5xx, and nothing is stored unless it
carries a valid `X-Hub-Signature-256`. Afterwards the service still opens conversations."""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convohook.config import Settings
from convohook.meta import notifications as n
from convohook.meta.signature import sign_body
from convohook.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx; the client still works
    from starlette.testclient import TestClient

SECRET = "fuzz-app-secret"
ACCOUNT = "17841455555555555"
CASES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=25,
)
_HEADERS = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.from_regex(r"sha256=[0-9a-f]{64}", fullmatch=True),
    st.from_regex(r"sha1=[0-9a-f]{40}", fullmatch=True),
)


class Fuzzed:
    def __init__(self, client: TestClient, db_path: Path) -> None:
        self.client = client
        self.db_path = db_path

    def post(self, body: bytes, signature: str | None) -> int:
        headers: dict[str, bytes] = {"Content-Type": b"application/json"}
        if signature is not None:
            # As raw bytes: a hostile sender is not bound to ASCII.
            headers["X-Hub-Signature-256"] = signature.encode()
        response = self.client.post("/webhooks/instagram", content=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.text, body[:200])
        if response.status_code >= 400:
            assert response.json()["message"], response.text  # a 4xx says what went wrong
        return int(response.status_code)

    def stored(self) -> int:
        # Its own connection: the app's belongs to its database thread.
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM notifications").fetchone()[0])


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    db_path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    app = create_app(
        Settings(
            database_url=f"sqlite:///{db_path}",
            meta_app_secret=SECRET,  # type: ignore[arg-type]
            graph_api_url="http://127.0.0.1:9/v24.0",  # unreachable: profiles fall back
            graph_timeout=0.2,
            profile_deadline=0.5,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Fuzzed(client, db_path)


@CASES
@given(body=st.binary(max_size=2000), signature=_HEADERS)
def test_unsigned_or_badly_signed_bodies_are_refused_and_never_stored(
    fuzzed: Fuzzed, body: bytes, signature: str | None
) -> None:
    if signature == sign_body(SECRET, body):
        return  # a 1 in 2**256 guess
    before = fuzzed.stored()
    assert fuzzed.post(body, signature) == 401
    assert fuzzed.stored() == before


@CASES
@given(body=st.binary(max_size=2000))
def test_any_signed_bytes_get_a_200_or_a_400_and_only_a_200_is_stored(
    fuzzed: Fuzzed, body: bytes
) -> None:
    before = fuzzed.stored()
    status = fuzzed.post(body, sign_body(SECRET, body))
    assert status in (200, 400)
    assert fuzzed.stored() == before + (status == 200)


@CASES
@given(document=_JSON, where=st.sampled_from(["root", "entry", "messaging", "message"]))
def test_signed_json_of_any_shape_is_answered_without_a_server_error(
    fuzzed: Fuzzed, document: Any, where: str
) -> None:
    # Valid notifications with one part replaced by arbitrary JSON, as a changed or broken
    # sender might produce.
    item = n.text_message("1234567890123456", ACCOUNT, "mid.fuzz", 1_700_000_000_000, "hi")
    entry = n.entry(ACCOUNT, [item])
    if where == "message":
        item["message"] = document
    elif where == "messaging":
        entry["messaging"] = document
    elif where == "entry":
        entry = document
    notification = n.notification([entry]) if where != "root" else document
    # The standard library's encoder: it writes integers past 64 bits and infinities too, as a
    # hostile sender may (orjson on our side refuses them: a 400).
    body = json.dumps(notification).encode()
    assert fuzzed.post(body, sign_body(SECRET, body)) in (200, 400)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000),
        ("deeply nested object", b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
        ("invalid UTF-8", b'{"object":"instagram","entry":[{"id":"\xff\xfe"}]}'),
        ("a lone surrogate escape", b'{"object":"instagram","x":"\\ud800"}'),
        ("NaN", b'{"object":"instagram","x":NaN}'),
        ("empty", b""),
    ],
)
def test_hostile_bodies_with_a_valid_signature_are_refused_or_kept_never_crash(
    fuzzed: Fuzzed, name: str, body: bytes
) -> None:
    assert fuzzed.post(body, sign_body(SECRET, body)) in (200, 400), name


def test_after_all_that_a_real_dm_still_opens_a_conversation(fuzzed: Fuzzed) -> None:
    api_key = create_org_key(fuzzed)
    auth = {"Authorization": f"Bearer {api_key}"}
    channel = fuzzed.client.post(
        "/api/v1/channels",
        json={
            "type": "INSTAGRAM",
            "handle": "fuzz_shop",
            "account_id": ACCOUNT,
            "access_token": "t",
        },
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    body = n.encode(
        n.notification(
            [n.entry(ACCOUNT, [n.text_message("99", ACCOUNT, "mid.real", 1_700_000_000_000, "hi")])]
        )
    )
    assert fuzzed.post(body, sign_body(SECRET, body)) == 200

    def opened() -> bool:
        listing = fuzzed.client.get("/api/v1/conversations", headers=auth).json()
        return any(c["status"] == "open" for c in listing["items"])

    for _ in range(100):
        if opened():
            return
        time.sleep(0.05)
    raise AssertionError("the real DM did not open a conversation")


def create_org_key(fuzzed: Fuzzed) -> str:
    from convohook.storage.database import open_database
    from convohook.usecases.orgs import create_org

    db = open_database(f"sqlite:///{fuzzed.db_path}")
    try:
        return db.run_sync(create_org, "Fuzz", 0).api_key
    finally:
        db.close()
