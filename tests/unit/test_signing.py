"""Signatures must verify with the public standardwebhooks library and match the spec's vectors."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from convohook.delivery.signing import (
    InvalidSecret,
    generate_secret,
    sign,
    signature_header,
    webhook_headers,
)

BODY = b'{"to": "acme", "conversationOpened": true}'
MSG_ID = "msg_2mZ0yAbCdEfGhIjKlMnOpQrStU"


def _load_vectors() -> list[dict[str, Any]]:
    for directory in Path(__file__).resolve().parents:
        candidate = directory / "shared" / "fixtures" / "standardwebhooks_vectors.json"
        if candidate.is_file():
            vectors: list[dict[str, Any]] = json.loads(candidate.read_text())["vectors"]
            return vectors
    message = "shared/fixtures/standardwebhooks_vectors.json not found above the tests"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run with shared/ beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def hmac_vectors() -> list[dict[str, Any]]:
    # ed25519 (v1a) vectors hold a secret_key/public_key pair instead; v1a is not implemented.
    vectors = [v for v in _load_vectors() if "secret" in v]
    assert vectors, "the fixture holds no HMAC vectors"
    return vectors


def test_expected_signatures_match(hmac_vectors: list[dict[str, Any]]) -> None:
    checked = 0
    for v in hmac_vectors:
        if "expected_signature" not in v:
            continue
        body = v["payload"].encode()
        assert sign(v["secret"], v["msg_id"], v["timestamp"], body) == v["expected_signature"]
        if "secret_equivalent_padded" in v:
            padded = v["secret_equivalent_padded"]
            assert sign(padded, v["msg_id"], v["timestamp"], body) == v["expected_signature"]
        checked += 1
    assert checked >= 3


def test_secret_with_and_without_prefix_agree(hmac_vectors: list[dict[str, Any]]) -> None:
    v = next(v for v in hmac_vectors if v["secret"].startswith("whsec_"))
    body = v["payload"].encode()
    bare = v["secret"].removeprefix("whsec_")
    assert sign(bare, v["msg_id"], v["timestamp"], body) == sign(
        v["secret"], v["msg_id"], v["timestamp"], body
    )


def test_header_vectors(hmac_vectors: list[dict[str, Any]]) -> None:
    """A header is valid exactly when one of its v1 entries is our signature."""
    checked = 0
    for v in hmac_vectors:
        if "header_signature" not in v:
            continue
        ours = sign(v["secret"], v["msg_id"], v["timestamp"], v["payload"].encode())
        assert (ours in v["header_signature"].split(" ")) is v["valid"], v["name"]
        checked += 1
    assert checked >= 2


def test_signed_content_layout(hmac_vectors: list[dict[str, Any]]) -> None:
    v = next(v for v in hmac_vectors if "signed_content" in v)
    assert v["signed_content"] == f"{v['msg_id']}.{v['timestamp']}.{v['payload']}"


def _verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    Webhook(secret).verify(body, headers)


def test_reference_library_verifies_our_headers() -> None:
    secret = generate_secret()
    timestamp = int(time.time())
    headers = webhook_headers([secret], MSG_ID, timestamp, BODY)
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-timestamp"] == str(timestamp)
    assert headers["content-type"] == "application/json"
    _verify(secret, BODY, headers)


def test_reference_library_rejects_another_secret_or_body() -> None:
    timestamp = int(time.time())
    headers = webhook_headers([generate_secret()], MSG_ID, timestamp, BODY)
    with pytest.raises(WebhookVerificationError):
        _verify(generate_secret(), BODY, headers)
    secret = generate_secret()
    headers = webhook_headers([secret], MSG_ID, timestamp, BODY)
    with pytest.raises(WebhookVerificationError):
        _verify(secret, BODY + b" ", headers)


def test_rotation_verifies_with_either_secret() -> None:
    old, new = generate_secret(), generate_secret()
    timestamp = int(time.time())
    headers = webhook_headers([old, new], MSG_ID, timestamp, BODY)
    entries = headers["webhook-signature"].split(" ")
    assert entries == [sign(old, MSG_ID, timestamp, BODY), sign(new, MSG_ID, timestamp, BODY)]
    _verify(old, BODY, headers)
    _verify(new, BODY, headers)
    with pytest.raises(WebhookVerificationError):
        _verify(generate_secret(), BODY, headers)


def test_generated_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert generate_secret() != secret


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", "whsec_a", "whsec_===="])
def test_malformed_secret_is_refused_clearly(secret: str) -> None:
    with pytest.raises(InvalidSecret, match="whsec_"):
        sign(secret, MSG_ID, 1, BODY)


def test_invalid_secret_message_does_not_echo_the_secret() -> None:
    secret = "whsec_s3cr3t-value!"
    with pytest.raises(InvalidSecret) as excinfo:
        sign(secret, MSG_ID, 1, BODY)
    assert "s3cr3t" not in str(excinfo.value)


def test_signature_header_needs_a_sequence_of_secrets() -> None:
    with pytest.raises(TypeError, match="sequence of secrets"):
        signature_header(generate_secret(), MSG_ID, 1, BODY)
    with pytest.raises(InvalidSecret, match="at least one secret"):
        signature_header([], MSG_ID, 1, BODY)
