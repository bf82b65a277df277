"""Signatures must verify with the public standardwebhooks library and match the spec's vectors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from convohook.delivery.signing import (
    InvalidSecret,
    generate_secret,
    generate_signing_keypair,
    public_key_of,
    sign,
    sign_v1a,
    signature_header,
    verify_v1a,
    webhook_headers,
)

BODY = b'{"to": "acme", "conversationOpened": true}'
MSG_ID = "msg_2mZ0yAbCdEfGhIjKlMnOpQrStU"


# A copy of the vectors in the repository (tests/fixtures/README.md says where they come from):
# a fresh clone checks every signature, with nothing needed beside it.
VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "standardwebhooks_vectors.json"


def _load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


@pytest.fixture(scope="module")
def hmac_vectors() -> list[dict[str, Any]]:
    # ed25519 (v1a) vectors hold a secret_key/public_key pair instead; see ed25519_vectors.
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


# --- ed25519 `v1a` (asymmetric, as in the Svix server) ---


@pytest.fixture(scope="module")
def ed25519_vectors() -> list[dict[str, Any]]:
    vectors = [v for v in _load_vectors() if "secret_key" in v]
    assert vectors, "the fixture holds no ed25519 vectors"
    return vectors


def test_ed25519_vectors_sign_exactly(ed25519_vectors: list[dict[str, Any]]) -> None:
    for v in ed25519_vectors:
        body = v["payload"].encode()
        assert (
            sign_v1a(v["secret_key"], v["msg_id"], v["timestamp"], body)
            == (v["expected_signature"])
        ), v["name"]
        assert public_key_of(v["secret_key"]) == v["public_key"], v["name"]


def test_ed25519_vectors_verify(ed25519_vectors: list[dict[str, Any]]) -> None:
    for v in ed25519_vectors:
        pk, msg_id, ts, body = v["public_key"], v["msg_id"], v["timestamp"], v["payload"].encode()
        header = v["expected_signature"]
        assert verify_v1a(pk, msg_id, ts, body, header) is v["valid"], v["name"]
        # Among other entries, as a rotation or a mixed header would carry it.
        mixed = f"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v2,xyz {header}"
        assert verify_v1a(pk, msg_id, ts, body, mixed) is v["valid"], v["name"]
        # Tampering with any signed part, or the signature, fails.
        assert not verify_v1a(pk, msg_id, ts, body + b" ", header)
        assert not verify_v1a(pk, msg_id, ts + 1, body, header)
        assert not verify_v1a(pk, msg_id + "x", ts, body, header)
        assert not verify_v1a(pk, msg_id, ts, body, header.replace("v1a,", "v1,"))
        raw = bytearray(base64.b64decode(header.removeprefix("v1a,")))
        raw[0] ^= 1
        flipped = "v1a," + base64.b64encode(bytes(raw)).decode()
        assert not verify_v1a(pk, msg_id, ts, body, flipped)
        # Another key pair's public key does not verify it.
        assert not verify_v1a(generate_signing_keypair()[1], msg_id, ts, body, header)


def test_ed25519_vector_key_layout(ed25519_vectors: list[dict[str, Any]]) -> None:
    """The fixture's Svix keys: whsk_ = base64(seed || public), whpk_ = base64(public)."""
    for v in ed25519_vectors:
        secret = base64.b64decode(v["secret_key"].removeprefix("whsk_"), validate=True)
        public = base64.b64decode(v["public_key"].removeprefix("whpk_"), validate=True)
        assert len(secret) == 64
        assert secret[32:] == public


@pytest.mark.parametrize(
    "header",
    ["", "v1a", "v1a,", "v1a,not base64!", "v1a,AAAA", "v1,abc v2,def", "garbage , ,,"],
)
def test_verify_v1a_rejects_malformed_headers(header: str) -> None:
    _, public_key = generate_signing_keypair()
    assert not verify_v1a(public_key, MSG_ID, 1, BODY, header)


def test_keypair_round_trip() -> None:
    secret_key, public_key = generate_signing_keypair()
    assert secret_key.startswith("whsk_")
    assert public_key.startswith("whpk_")
    secret = base64.b64decode(secret_key.removeprefix("whsk_"), validate=True)
    public = base64.b64decode(public_key.removeprefix("whpk_"), validate=True)
    assert len(secret) == 64
    assert len(public) == 32
    assert secret[32:] == public
    assert public_key_of(secret_key) == public_key
    timestamp = int(time.time())
    signature = sign_v1a(secret_key, MSG_ID, timestamp, BODY)
    assert signature.startswith("v1a,")
    assert len(base64.b64decode(signature.removeprefix("v1a,"), validate=True)) == 64
    assert sign_v1a(secret_key, MSG_ID, timestamp, BODY) == signature  # deterministic
    assert verify_v1a(public_key, MSG_ID, timestamp, BODY, signature)
    # Keys without their prefixes are accepted, as HMAC secrets are.
    bare_secret, bare_public = secret_key.removeprefix("whsk_"), public_key.removeprefix("whpk_")
    assert sign_v1a(bare_secret, MSG_ID, timestamp, BODY) == signature
    assert verify_v1a(bare_public, MSG_ID, timestamp, BODY, signature)
    other_secret, other_public = generate_signing_keypair()
    assert other_secret != secret_key
    assert not verify_v1a(other_public, MSG_ID, timestamp, BODY, signature)


def test_mixed_rotation_header() -> None:
    """HMAC and ed25519 secrets in one list: one entry each, in order, each verifiable."""
    hmac_secret = generate_secret()
    secret_key, public_key = generate_signing_keypair()
    timestamp = int(time.time())
    headers = webhook_headers([hmac_secret, secret_key], MSG_ID, timestamp, BODY)
    entries = headers["webhook-signature"].split(" ")
    assert entries == [
        sign(hmac_secret, MSG_ID, timestamp, BODY),
        sign_v1a(secret_key, MSG_ID, timestamp, BODY),
    ]
    # The reference library checks the v1 part and skips the v1a entry ...
    _verify(hmac_secret, BODY, headers)
    with pytest.raises(WebhookVerificationError):
        _verify(generate_secret(), BODY, headers)
    # ... and verify_v1a checks the v1a part, skipping the v1 entry.
    assert verify_v1a(public_key, MSG_ID, timestamp, BODY, headers["webhook-signature"])
    assert not verify_v1a(public_key, MSG_ID, timestamp, BODY + b" ", headers["webhook-signature"])

    # The other order, and an ed25519 key rotation, keep the order given.
    new_secret_key, new_public_key = generate_signing_keypair()
    header = signature_header([secret_key, hmac_secret, new_secret_key], MSG_ID, timestamp, BODY)
    assert header.split(" ") == [
        sign_v1a(secret_key, MSG_ID, timestamp, BODY),
        sign(hmac_secret, MSG_ID, timestamp, BODY),
        sign_v1a(new_secret_key, MSG_ID, timestamp, BODY),
    ]
    assert verify_v1a(public_key, MSG_ID, timestamp, BODY, header)
    assert verify_v1a(new_public_key, MSG_ID, timestamp, BODY, header)
    _verify(hmac_secret, BODY, {**headers, "webhook-signature": header})


def test_signature_header_only_ed25519() -> None:
    secret_key, public_key = generate_signing_keypair()
    header = signature_header([secret_key], MSG_ID, 1614265330, BODY)
    assert header == sign_v1a(secret_key, MSG_ID, 1614265330, BODY)
    assert verify_v1a(public_key, MSG_ID, 1614265330, BODY, header)


_VALID_SECRET_KEY = (
    "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
)
# Base64 of 64 bytes whose second half is not the public key of the first.
_MISMATCHED_SECRET_KEY = "whsk_" + base64.b64encode(bytes(range(64))).decode()
_MALFORMED_SECRET_KEYS = [
    pytest.param("whsk_", id="empty"),
    pytest.param("whsk_s3cr3t-value!", id="not-base64"),
    pytest.param("whsk_" + base64.b64encode(b"s3cr3t" * 5 + b"xy").decode(), id="32-byte-seed"),
    pytest.param(_VALID_SECRET_KEY[:-8] + "==", id="truncated"),
    pytest.param(_VALID_SECRET_KEY + "AAAA", id="too-long"),
    pytest.param(_MISMATCHED_SECRET_KEY, id="public-half-mismatch"),
]


def _secret_body(key: str) -> str:
    return key.removeprefix("whsk_").removeprefix("whpk_").rstrip("=")


@pytest.mark.parametrize("secret_key", _MALFORMED_SECRET_KEYS)
def test_malformed_secret_key_is_refused_without_echo(secret_key: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: sign_v1a(secret_key, MSG_ID, 1, BODY),
        lambda: public_key_of(secret_key),
        lambda: signature_header([generate_secret(), secret_key], MSG_ID, 1, BODY),
    ]
    for call in calls:
        with pytest.raises(InvalidSecret, match="whsk_") as excinfo:
            call()
        message = str(excinfo.value)
        body = _secret_body(secret_key)
        if body:
            assert body not in message
            assert body[:8] not in message


@pytest.mark.parametrize(
    "public_key",
    [
        "whpk_",
        "whpk_not base64!",
        "whpk_" + base64.b64encode(b"x" * 31).decode(),
        "whpk_" + base64.b64encode(b"x" * 64).decode(),
    ],
)
def test_malformed_public_key_is_refused_without_echo(public_key: str) -> None:
    with pytest.raises(InvalidSecret, match="whpk_") as excinfo:
        verify_v1a(public_key, MSG_ID, 1, BODY, "v1a,AAAA")
    body = _secret_body(public_key)
    if body:
        assert body[:8] not in str(excinfo.value)


def test_public_key_cannot_sign() -> None:
    _, public_key = generate_signing_keypair()
    with pytest.raises(InvalidSecret, match="whpk_") as excinfo:
        signature_header([public_key], MSG_ID, 1, BODY)
    assert _secret_body(public_key)[:8] not in str(excinfo.value)


def test_hmac_secret_is_not_an_ed25519_key() -> None:
    secret = generate_secret()
    with pytest.raises(InvalidSecret, match="whsk_") as excinfo:
        sign_v1a(secret, MSG_ID, 1, BODY)
    assert _secret_body(secret.removeprefix("whsec_"))[:8] not in str(excinfo.value)
