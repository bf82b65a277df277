"""Secrets encrypted at rest, on both backends: what the database holds, what convohook reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from test_storage_contract import T0, _ready_delivery

from convohook.domain.model import DueDelivery, Webhook
from convohook.meta import notifications as n
from convohook.storage.base import Transaction
from convohook.storage.database import Database, open_database
from convohook.storage.sealing import PREFIX, Sealer, SealError, new_key, parse_key
from convohook.usecases.orgs import create_org
from convohook.usecases.secrets import SecretsAtRest, seal_all, survey
from convohook.usecases.webhooks import rotate_secret

from harness import Api, Meta, running_convohook

AUTH = "Bearer crm-token-0123456789"


@pytest.fixture
def databases(database_url_for: str) -> Iterator[tuple[Database, Database, Sealer]]:
    """The same database opened without a key (as before one was configured) and with one."""
    sealer = Sealer(key=parse_key(new_key()))
    plain = open_database(database_url_for)
    plain.storage.migrate()
    sealed = open_database(database_url_for, sealer)
    yield plain, sealed, sealer
    sealed.close()
    plain.close()


def _stored(db: Database) -> dict[str, str]:
    return {column: value for column, _, value in db.run_sync(lambda tx: tx.secrets_at_rest())}


def _with_auth_and_rotation(db: Database, webhook: Webhook) -> str:
    """Give the webhook an Authorization value and a new secret (the old one kept a day)."""

    def change(tx: Transaction) -> str:
        current = tx.get_webhook(webhook.org_id, webhook.id)
        assert current is not None
        tx.update_webhook(replace(current, auth_type="bearer", auth_value=AUTH))
        rotation = rotate_secret(
            tx, webhook.org_id, webhook.id, scheme=None, grace_ms=86_400_000, now_ms=T0
        )
        assert rotation is not None
        return rotation.webhook.secret

    return db.run_sync(change)


def _claim(db: Database) -> DueDelivery:
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 1, T0 + 60_000, 10))
    return due


def _reads_back(db: Database, webhook: Webhook, new_secret: str) -> None:
    got = db.run_sync(lambda tx: tx.get_webhook(webhook.org_id, webhook.id))
    assert got is not None
    assert (got.secret, got.auth_value) == (new_secret, AUTH)
    channel = db.run_sync(lambda tx: tx.get_channel(webhook.org_id, "ch_1"))
    assert channel is not None
    assert channel.access_token == "tok"
    due = _claim(db)
    assert (due.secret, due.previous_secrets, due.auth_value) == (
        new_secret,
        (webhook.secret,),
        AUTH,
    )


def test_secrets_are_sealed_in_the_database_and_read_back_as_given(
    databases: tuple[Database, Database, Sealer],
) -> None:
    plain, sealed, _ = databases
    _, webhook = _ready_delivery(sealed)
    new_secret = _with_auth_and_rotation(sealed, webhook)

    stored = plain.run_sync(lambda tx: tx.secrets_at_rest())
    assert sorted(column for column, _, _ in stored) == [
        "channels.access_token",
        "webhook_secrets.secret",
        "webhooks.auth_value",
        "webhooks.secret",
    ]
    for _, _, value in stored:
        assert value.startswith(PREFIX)
        for secret in (webhook.secret, new_secret, AUTH):
            assert secret not in value
            assert secret.removeprefix("whsec_")[:12] not in value

    _reads_back(sealed, webhook, new_secret)
    with pytest.raises(SealError, match="CONVOHOOK_ENCRYPTION_KEY"):
        plain.run_sync(lambda tx: tx.get_webhook(webhook.org_id, webhook.id))


def test_secrets_stored_before_a_key_are_sealed_by_seal_all_and_still_work(
    databases: tuple[Database, Database, Sealer],
) -> None:
    plain, sealed, sealer = databases
    _, webhook = _ready_delivery(plain)
    new_secret = _with_auth_and_rotation(plain, webhook)
    assert sealed.run_sync(survey, sealer) == SecretsAtRest(plain=4, sealed=0, unknown_keys=())

    assert sealed.run_sync(seal_all, sealer) == 4
    assert sealed.run_sync(seal_all, sealer) == 0  # nothing left to do
    assert sealed.run_sync(survey, sealer) == SecretsAtRest(plain=0, sealed=4, unknown_keys=())
    assert all(value.startswith(PREFIX) for value in _stored(plain).values())
    _reads_back(sealed, webhook, new_secret)


def test_a_new_key_takes_over_from_the_old_one(
    databases: tuple[Database, Database, Sealer], database_url_for: str
) -> None:
    _, sealed, old = databases
    _, webhook = _ready_delivery(sealed)
    new_secret = _with_auth_and_rotation(sealed, webhook)
    assert old.key is not None
    rotated = Sealer(key=parse_key(new_key()), old_keys=[old.key])
    after = Sealer(key=rotated.key)
    during = open_database(database_url_for, rotated)
    try:
        assert during.run_sync(seal_all, rotated) == 4
    finally:
        during.close()
    assert sealed.run_sync(survey, old) == SecretsAtRest(0, 0, (after.current_id or "",))
    new_only = open_database(database_url_for, after)
    try:
        _reads_back(new_only, webhook, new_secret)
    finally:
        new_only.close()


async def test_with_a_key_webhooks_are_signed_and_verified_as_before(
    database_url_for: str,
) -> None:
    key = new_key()
    secret = "faults-app-secret"
    async with running_convohook(database_url_for, secret, encryption_key=key) as run:
        org = await run.services.db.run(create_org, "Sealed", run.services.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {"type": "INSTAGRAM", "handle": "s", "account_id": "1799", "access_token": "tk-999"},
        )
        webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {
                "name": "crm",
                "url": run.receiver.url,
                "channel_ids": [channel["id"]],
                "auth": {"type": "bearer", "token": "crm-bearer-777"},
            },
        )
        run.graph.put("5050", "sealed.customer", "Sealed Customer")
        item = n.text_message("5050", "1799", "m.sealed", 1_700_000_000_000, "hi")
        assert (
            await Meta(run.base, secret).post(n.encode(n.notification([n.entry("1799", [item])])))
            == 200
        )
        [delivery] = await run.receiver.wait_for(1, timeout=20)
        [verified] = run.receiver.verify_all(webhook["secret"])
        assert verified["from"] == "sealed.customer"
        assert delivery.headers["Authorization"] == "Bearer crm-bearer-777"
        stored = await run.services.db.read(lambda tx: tx.secrets_at_rest())
    assert {column for column, _, _ in stored} == {
        "channels.access_token",
        "webhooks.secret",
        "webhooks.auth_value",
    }
    for _, _, value in stored:
        assert value.startswith(PREFIX)
        for plain in (webhook["secret"], "tk-999", "crm-bearer-777"):
            assert plain not in value
