"""The OpenAPI document (what /api/openapi.json serves) against itself and against docs/api.md:
every success answer typed, every operation under the bearer scheme, and the prose naming
exactly the operations and events the document has, so that they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from convohook.config import Settings
from convohook.web.app import create_app

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# `GET /api/v1/webhooks`, `GET|PATCH|DELETE /api/v1/webhooks/{id}`, `GET /api/v1/contacts?handle=`
MENTION = re.compile(
    r"\b((?:GET|POST|PUT|PATCH|DELETE)(?:\|(?:GET|POST|PUT|PATCH|DELETE))*) (/api/v1/[^\s`?]*)"
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # The document does not depend on the database: an app that never starts serves it.
    return create_app(Settings(database_url="sqlite:///unused.db"), workers=False).openapi()


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in document["paths"].items()
        for method in item
    }


def _mentioned() -> set[tuple[str, str]]:
    text = API_MD.read_text()
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path.rstrip(".,;:")))
        for methods, path in MENTION.findall(text)
        for method in methods.split("|")
    }


def test_every_operation_of_the_document_is_in_api_md(document: dict[str, Any]) -> None:
    missing = _operations(document) - _mentioned()
    assert not missing, f"docs/api.md says nothing of {sorted(missing)}"


def test_api_md_names_no_operation_the_document_lacks(document: dict[str, Any]) -> None:
    extra = _mentioned() - _operations(document)
    assert not extra, f"docs/api.md names {sorted(extra)}, which /api/openapi.json does not have"


def test_api_md_lists_every_event_a_webhook_takes(document: dict[str, Any]) -> None:
    events = document["components"]["schemas"]["WebhookIn"]["properties"]["events"]["items"]
    text = API_MD.read_text()
    assert len(events["enum"]) == 5
    for event in events["enum"]:
        assert f"| `{event}` |" in text, f"docs/api.md's table of events lacks {event}"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return dict(document["components"]["schemas"][ref.rsplit("/", 1)[-1]]) if ref else schema


def test_every_success_answer_has_an_exact_schema(document: dict[str, Any]) -> None:
    """A body schema for every 2xx (none for a 204), each an object that lists its keys and
    allows no others: schemathesis's response_schema_conformance then checks them exactly."""
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                if status == "204":
                    assert "content" not in answer, (method, path)
                    continue
                schema = _resolve(document, answer["content"]["application/json"]["schema"])
                assert schema.get("type") == "object", (method, path, schema)
                assert schema.get("additionalProperties") is False, (method, path)
                assert schema["properties"], (method, path)
                checked += 1
    assert checked >= 19


def test_every_answer_schema_is_exact_all_the_way_down(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        if name.endswith(("Out", "Page")):
            assert schema.get("additionalProperties") is False, name
            assert schema.get("required"), name
