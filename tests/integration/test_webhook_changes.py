"""Changing a webhook (the API's PATCH, the UI's save, enable and disable) through its use case,
on both backends: the change holds the webhook's row for its whole transaction, so whatever
changes the webhook meanwhile (its secret rotated in another tab, the dispatcher disabling it
for failing) waits, then applies on top. Nothing is written over.

The UI's save used to read the webhook in one transaction and write the whole row in another:
a rotation or an automatic disable in between was silently reverted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, cast

import pytest

from convohook.domain.model import Webhook
from convohook.domain.webhooks import WebhookChanges, WebhookSpec
from convohook.storage.base import Storage, Transaction
from convohook.storage.database import open_storage
from convohook.usecases.channels import NewChannel, connect_channel
from convohook.usecases.errors import Invalid, NotFound
from convohook.usecases.orgs import create_org
from convohook.usecases.webhooks import change_webhook, create_webhook, rotate_secret

T0 = 1_700_000_000_000
# How long the change waits, holding the row, for the other change to finish: with the row
# held, it cannot finish; without, it would in milliseconds.
HOLD_S = 0.5


@pytest.fixture
def other(database_url_for: str, storage: Storage) -> Iterator[Storage]:
    """A second connection to the same database: another request, or another process."""
    second = open_storage(database_url_for)
    yield second
    second.close()


def _seed(storage: Storage) -> Webhook:
    with storage.transaction() as tx:
        org = create_org(tx, "Acme", T0).org
        channel = connect_channel(tx, org.id, NewChannel("acme", "1784", "token"), T0)
        spec = WebhookSpec(
            name="crm",
            url="https://crm.example.com/hook",
            channel_ids=(channel.id,),
            events=("conversation.opened",),
        )
        return create_webhook(tx, org.id, spec, T0)


class _Racing:
    """The change's transaction, with another change started right after it has read the
    webhook, and given `HOLD_S` to finish before this one goes on to write."""

    def __init__(self, tx: Transaction, concurrently: Callable[[], None]) -> None:
        self._tx = tx
        self._concurrently = concurrently
        self.other_finished_first = False
        self.thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def lock_webhook(self, org_id: str, webhook_id: str) -> Webhook | None:
        found = self._tx.lock_webhook(org_id, webhook_id)
        done = threading.Event()

        def run() -> None:
            self._concurrently()
            done.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        self.other_finished_first = done.wait(HOLD_S)
        return found


def _change_during(
    storage: Storage, webhook: Webhook, changes: WebhookChanges, concurrently: Callable[[], None]
) -> Webhook:
    with storage.transaction() as tx:
        racing = _Racing(tx, concurrently)
        change_webhook(cast(Transaction, racing), webhook.org_id, webhook.id, changes, T0 + 5)
    assert racing.thread is not None
    racing.thread.join(timeout=30)
    assert not racing.other_finished_first, "the other change did not wait for the row"
    with storage.transaction(write=False) as tx:
        after = tx.get_webhook(webhook.org_id, webhook.id)
    assert after is not None
    return after


def test_a_secret_rotated_during_a_save_survives_it(storage: Storage, other: Storage) -> None:
    webhook = _seed(storage)
    rotated: list[str] = []

    def rotate() -> None:
        with other.transaction() as tx:
            rotation = rotate_secret(
                tx, webhook.org_id, webhook.id, scheme=None, grace_ms=0, now_ms=T0 + 6
            )
            rotated.append(rotation.webhook.secret)

    after = _change_during(storage, webhook, WebhookChanges(name="CRM (leads)"), rotate)
    assert after.name == "CRM (leads)"
    assert after.secret == rotated[0] != webhook.secret


def test_a_disable_for_failing_during_a_save_survives_it(storage: Storage, other: Storage) -> None:
    webhook = _seed(storage)

    def disable() -> None:
        with other.transaction() as tx:
            assert tx.disable_webhook(webhook.id, "failing for 5 days", T0 + 6, keep_queue=True)

    after = _change_during(
        storage, webhook, WebhookChanges(url="https://crm.example.com/v2"), disable
    )
    assert after.url == "https://crm.example.com/v2"
    assert not after.enabled
    assert after.disabled_reason == "failing for 5 days"
    assert after.queue_while_disabled  # its openings keep waiting for it


def test_enabling_by_hand_starts_afresh_and_disabling_says_so(storage: Storage) -> None:
    webhook = _seed(storage)
    with storage.transaction() as tx:
        tx.webhook_failing(webhook.id, T0 + 1)
        tx.disable_webhook(webhook.id, "failing for 5 days", T0 + 2, keep_queue=True)
        enabled = change_webhook(tx, webhook.org_id, webhook.id, WebhookChanges(enabled=True), T0)
    assert (enabled.enabled, enabled.disabled_reason) == (True, None)
    assert enabled.failing_since_ms is None
    assert not enabled.queue_while_disabled
    with storage.transaction() as tx:
        disabled = change_webhook(tx, webhook.org_id, webhook.id, WebhookChanges(enabled=False), T0)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "disabled by user")
    assert not disabled.queue_while_disabled  # a person said stop: nothing queues


def test_the_ui_keeps_the_events_it_does_not_offer(storage: Storage) -> None:
    webhook = _seed(storage)
    with storage.transaction() as tx:
        change_webhook(
            tx,
            webhook.org_id,
            webhook.id,
            WebhookChanges(events=("conversation.opened", "delivery.exhausted")),
            T0,
        )
        after = change_webhook(
            tx,
            webhook.org_id,
            webhook.id,
            WebhookChanges(
                events=("conversation.closed",),
                events_offered=frozenset({"conversation.opened", "conversation.closed"}),
            ),
            T0,
        )
    assert after.events == ("conversation.closed", "delivery.exhausted")


def test_refusals_change_nothing(storage: Storage) -> None:
    webhook = _seed(storage)
    with pytest.raises(Invalid, match="channel_ids: unknown channel"), storage.transaction() as tx:
        change_webhook(
            tx,
            webhook.org_id,
            webhook.id,
            WebhookChanges(name="renamed", channel_ids=("ch_not_ours",)),
            T0,
        )
    with pytest.raises(NotFound, match="webhook 'wh_nope' not found"), storage.transaction() as tx:
        change_webhook(tx, webhook.org_id, "wh_nope", WebhookChanges(name="x"), T0)
    with storage.transaction(write=False) as tx:
        assert tx.get_webhook(webhook.org_id, webhook.id) == webhook


def test_conversation_events_need_a_channel_to_follow(storage: Storage) -> None:
    """Only the operations events go without a channel: a webhook for conversation events and
    no channel would never receive anything, whether it is created so or changed into it."""
    webhook = _seed(storage)
    ops_only = WebhookSpec(
        name="ops", url="https://ops.example.com", channel_ids=(), events=("delivery.exhausted",)
    )
    with storage.transaction() as tx:
        ops = create_webhook(tx, webhook.org_id, ops_only, T0)
    needs = "channel_ids: conversation events need at least one channel"
    with pytest.raises(Invalid, match=needs), storage.transaction() as tx:
        create_webhook(tx, webhook.org_id, replace(ops_only, events=("conversation.opened",)), T0)
    with pytest.raises(Invalid, match=needs), storage.transaction() as tx:
        change_webhook(
            tx,
            webhook.org_id,
            ops.id,
            WebhookChanges(events=("delivery.exhausted", "conversation.closed")),
            T0,
        )
    with storage.transaction(write=False) as tx:
        assert tx.get_webhook(webhook.org_id, ops.id) == ops
        assert len(tx.list_webhooks(webhook.org_id, None, 10)) == 2
