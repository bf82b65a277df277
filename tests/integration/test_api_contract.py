"""/api/v1 at its edges: the bearer key and what a malformed header is told, strict input types,
405 answers that name every method of the path, bodies that are not JSON, repeated parameters.
On real sockets, as a client sees them (test_app.py has the API's work; test_api_schema.py the
fuzzing)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from convohook.usecases.orgs import create_org

from harness import Api, running_convohook

ACCOUNT = "17841400000000055"


@dataclass
class Shop:
    base: str
    key: str
    api: Api
    channel: dict[str, Any]
    webhook: dict[str, Any]

    async def raw(
        self, method: str, path: str, *, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], Any]:
        """A request as sent, headers and body byte for byte (aiohttp adds no Authorization)."""
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, data=body, headers=headers) as response,
        ):
            raw = await response.read()
            return response.status, dict(response.headers), orjson.loads(raw) if raw else None


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    async with running_convohook(database_url_for, "contract-app-secret") as run:
        org = await run.services.db.run(create_org, "Acme", run.services.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
        )
        webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {"name": "crm", "url": run.receiver.url, "channel_ids": [channel["id"]]},
        )
        yield Shop(run.base, org.api_key, api, channel, webhook)


async def _document(shop: Shop) -> dict[str, Any]:
    status, _, document = await shop.raw("GET", "/api/openapi.json")
    assert status == 200
    return dict(document)


# --- authentication ---------------------------------------------------------------------------


async def test_every_operation_declares_the_bearer_scheme(shop: Shop) -> None:
    document = await _document(shop)
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 20
    for method, path, operation in operations:
        assert path.startswith("/api/v1/")
        assert operation.get("security") == [{"bearer": []}], (method, path)


@pytest.mark.parametrize(
    ("header", "told"),
    [
        # The key alone, without its scheme: a malformed header, not a missing key.
        ("{key}", "malformed Authorization header: the API key must follow 'Bearer '"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header: its scheme must be Bearer"),
        ("Bearer", "malformed Authorization header: no API key after 'Bearer'"),
        ("Bearer   ", "malformed Authorization header: no API key after 'Bearer'"),
        ("", "missing API key: send 'Authorization: Bearer <api_key>'"),
        ("Bearer chk_NotAKeyOfAnyOrg", "unknown API key"),
    ],
)
async def test_a_refused_key_is_told_why_and_what_to_send(
    shop: Shop, header: str, told: str
) -> None:
    sent = header.format(key=shop.key)
    if header:
        status, answered, body = await shop.raw("GET", "/api/v1/channels", Authorization=sent)
    else:
        status, answered, body = await shop.raw("GET", "/api/v1/channels")
    assert status == 401
    assert body["error"] == "unauthorized"
    assert body["message"].startswith(told), body["message"]
    assert answered["WWW-Authenticate"] == 'Bearer realm="convohook"'
    if header.startswith("{key}"):
        assert "send 'Authorization: Bearer chk_…'" in body["message"]
    # ... and the key sent as it should be works.
    status, _, _ = await shop.raw("GET", "/api/v1/channels", Authorization=f"Bearer {shop.key}")
    assert status == 200


# --- strict input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/recover", {"since": 0}, "since"),
        ("POST", "/recover", {"since": 1_700_000_000}, "since"),
        ("POST", "/recover", {"since": "1700000000"}, "since"),
        ("POST", "/recover", {"since": "2026-11-20"}, "since"),
        ("POST", "/recover", {"since": "2026-11-20T00:00:00"}, "since"),  # local time: whose?
        ("POST", "/rotate-secret", {"grace_seconds": False}, "grace_seconds"),
        ("POST", "/rotate-secret", {"grace_seconds": "60"}, "grace_seconds"),
        ("POST", "/rotate-secret", {"grace_seconds": 1.5}, "grace_seconds"),
        ("PATCH", "", {"enabled": 1}, "enabled"),
        ("PATCH", "", {"enabled": "true"}, "enabled"),
        ("PATCH", "", {"remove_limits": 0}, "remove_limits"),
        ("PATCH", "", {"timeout_seconds": True}, "timeout_seconds"),
        ("PATCH", "", {"timeout_seconds": "5"}, "timeout_seconds"),
        ("PATCH", "", {"max_concurrency": "3"}, "max_concurrency"),
        ("PATCH", "", {"name": 5}, "name"),
        ("PATCH", "", {"events": "conversation.opened"}, "events"),
        ("PATCH", "", {"headers": {"X-Team": 1}}, "headers.X-Team"),
    ],
)
async def test_inputs_of_the_wrong_json_type_are_refused_naming_the_field(
    shop: Shop, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    webhook = f"/api/v1/webhooks/{shop.webhook['id']}"
    status, answer = await shop.api.call(method, webhook + path, body)
    assert status == 422, answer
    assert answer["error"] == "validation_error"
    assert answer["message"].startswith(f"{field}: "), answer["message"]
    assert [d["field"] for d in answer["details"]] == [field]
    unchanged = await shop.api.ok("GET", webhook)
    assert unchanged["updated_at"] == shop.webhook["updated_at"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/channels", {"handle": True, "account_id": "1", "access_token": "t"}, "handle"),
        ("/api/v1/bots", {"name": ["Lead bot"]}, "name"),
        (
            "/api/v1/webhooks",
            {"name": "x", "url": "https://example.com/h", "enabled": 0},
            "enabled",
        ),
    ],
)
async def test_new_objects_take_strict_types_too(
    shop: Shop, path: str, body: dict[str, Any], field: str
) -> None:
    status, answer = await shop.api.call("POST", path, body)
    assert status == 422
    assert answer["message"].startswith(f"{field}: "), answer["message"]


async def test_whole_numbers_and_times_with_an_offset_are_taken(shop: Shop) -> None:
    webhook = f"/api/v1/webhooks/{shop.webhook['id']}"
    # JSON Schema's integer includes 2.0: a number without a fraction.
    changed = await shop.api.ok("PATCH", webhook, {"max_concurrency": 2.0, "timeout_seconds": 5})
    assert (changed["max_concurrency"], changed["timeout_seconds"]) == (2, 5.0)
    rotated = await shop.api.ok("POST", webhook + "/rotate-secret", {"grace_seconds": 60.0})
    assert rotated["secret"].startswith("whsec_")
    recovered = await shop.api.ok(
        "POST", webhook + "/recover", {"since": "2026-11-20T01:00:00+01:00"}
    )
    assert recovered == {"recovered": 0, "since": "2026-11-20T00:00:00.000Z"}
    # Before 1970 (after 9999) there are no deliveries: the bound said back is the one used.
    recovered = await shop.api.ok("POST", webhook + "/recover", {"since": "0001-01-01T00:00:00Z"})
    assert recovered["since"] == "1970-01-01T00:00:00.000Z"
    recovered = await shop.api.ok(
        "POST", webhook + "/recover", {"since": "9999-12-31T23:59:59-23:59"}
    )
    assert recovered["since"] == "9999-12-31T23:59:59.999Z"


# --- methods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/webhooks/{webhook}", "GET, PATCH, DELETE"),
        ("OPTIONS", "/api/v1/webhooks/{webhook}", "GET, PATCH, DELETE"),
        ("OPTIONS", "/api/v1/webhooks", "GET, POST"),
        ("DELETE", "/api/v1/channels", "GET, POST"),
        ("PUT", "/api/v1/webhooks/{webhook}/rotate-secret", "POST"),
        ("GET", "/api/v1/deliveries/x/retry", "POST"),
        ("OPTIONS", "/webhooks/instagram", "GET, HEAD, POST"),
        ("PUT", "/static/app.css", "GET, HEAD"),
        ("PUT", "/api/docs/assets/swagger-ui.css", "GET, HEAD"),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    shop: Shop, method: str, path: str, allow: str
) -> None:
    concrete = path.format(webhook=shop.webhook["id"])
    status, headers, body = await shop.raw(method, concrete, Authorization=f"Bearer {shop.key}")
    assert status == 405
    assert headers["Allow"] == allow
    assert body == {
        "error": "method_not_allowed",
        "message": f"{method} is not allowed on {concrete}: use {allow}",
    }


async def test_every_api_path_allows_what_the_document_says(shop: Shop) -> None:
    """OPTIONS on each documented path: its Allow lists exactly the documented methods."""
    for path, item in (await _document(shop))["paths"].items():
        concrete = path.replace("{", "").replace("}", "")
        status, headers, _ = await shop.raw("OPTIONS", concrete)
        assert status == 405, path
        assert set(headers["Allow"].split(", ")) == {m.upper() for m in item}, path


# --- bodies and parameters --------------------------------------------------------------------


async def test_a_body_that_is_not_json_is_said_to_be_so(shop: Shop) -> None:
    json = {"Authorization": f"Bearer {shop.key}", "Content-Type": "application/json"}
    status, _, answer = await shop.raw(
        "POST", "/api/v1/bots", body=b'{"name": "Lead bot" "trigger": "webhook"}', **json
    )
    assert status == 422
    problem = "not valid JSON (expecting ',' delimiter at character 20): send a JSON object"
    assert answer == {
        "error": "validation_error",
        "message": f"body: {problem}",
        "details": [{"field": "body", "message": problem}],
    }
    status, _, answer = await shop.raw("POST", "/api/v1/bots", body=b'["Lead bot"]', **json)
    assert (status, answer["details"]) == (
        422,
        [{"field": "body", "message": "must be a JSON object, not an array"}],
    )
    status, _, answer = await shop.raw("POST", "/api/v1/bots", body=b"", **json)
    assert (status, answer["message"]) == (422, "body: missing: send a JSON object")
    status, _, answer = await shop.raw(
        "POST",
        "/api/v1/bots",
        body=b'{"name": "Lead bot"}',
        **{**json, "Content-Type": "text/plain"},
    )
    assert (status, answer["message"]) == (
        422,
        "body: not JSON: send a JSON object with Content-Type: application/json",
    )
    status, _, answer = await shop.raw(
        "POST", "/api/v1/bots", body=b'{"name": "Lead \xe9bot"}', **json
    )
    assert status == 400
    assert answer["error"] == "bad_request"
    assert answer["message"].startswith("body: not UTF-8 (invalid continuation byte at byte 15)")
    assert (await shop.api.ok("GET", "/api/v1/bots"))["items"] == []


async def test_a_refused_url_is_a_field_error(shop: Shop) -> None:
    body = {"name": "x", "url": "ftp://crm.example.com/", "channel_ids": [shop.channel["id"]]}
    status, answer = await shop.api.call("POST", "/api/v1/webhooks", body)
    problem = "webhook URL must start with http:// or https://, got 'ftp://crm.example.com/'"
    assert (status, answer["details"]) == (422, [{"field": "url", "message": problem}])
    assert answer["message"] == f"url: {problem}"


async def test_a_query_parameter_given_twice_is_refused(shop: Shop) -> None:
    status, answer = await shop.api.call("GET", "/api/v1/channels?limit=1&limit=50")
    assert status == 422
    assert answer["message"] == "limit: given 2 times: send it once"
    assert answer["details"] == [{"field": "limit", "message": "given 2 times: send it once"}]
    assert (await shop.api.call("GET", "/api/v1/channels?limit=1"))[0] == 200


# --- the interactive documentation --------------------------------------------------------------


async def test_the_docs_page_loads_only_files_served_here(shop: Shop) -> None:
    """/api/docs works with no network: everything it references is on this server (Swagger UI
    vendored from npm), and each of those is served with its type."""
    async with aiohttp.ClientSession() as http:
        async with http.get(shop.base + "/api/docs") as page:
            assert page.status == 200
            assert page.headers["Content-Type"].startswith("text/html")
            text = await page.text()
        referenced = re.findall(r'(?:src|href)="([^"]+)"', text) + re.findall(
            r"url: '([^']+)'", text
        )
        assert not re.search(r"https?://|//[a-z]", text), "a reference to another origin"
        assert sorted(referenced) == [
            "/api/docs/assets/favicon-32x32.png",
            "/api/docs/assets/swagger-ui-bundle.js",
            "/api/docs/assets/swagger-ui.css",
            "/api/openapi.json",
        ]
        types = {
            ".js": "text/javascript",
            ".css": "text/css",
            ".png": "image/png",
            ".json": "application/json",
        }
        for url in referenced:
            async with http.get(shop.base + url) as asset:
                assert asset.status == 200, url
                assert asset.headers["Content-Type"].startswith(types[url[url.rindex(".") :]])
                assert len(await asset.read()) > 500, url


async def test_a_path_with_no_route_says_where_things_are(shop: Shop) -> None:
    status, _, body = await shop.raw("GET", "/api/v1/webhook", Authorization=f"Bearer {shop.key}")
    assert status == 404
    assert body["error"] == "not_found"
    assert body["message"].startswith("nothing at /api/v1/webhook: the API is under /api/v1")
    assert "/api/docs" in body["message"]
