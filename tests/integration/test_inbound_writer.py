"""The inbound group commit, storing only or processing at receipt in the same transaction."""

from __future__ import annotations

import asyncio

import pytest

from convohook.meta import notifications as n
from convohook.runtime.inbound_writer import InboundWriter, InlineProcessing
from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.storage.records import Channel, Webhook
from convohook.usecases.orgs import create_org
from convohook.usecases.processing import ProcessingPolicy, ProcessReport

T0 = 1_700_000_000_000


def setup_org(db: Database) -> None:
    def run(tx: Transaction) -> None:
        org = create_org(tx, "Acme", T0).org
        channel = Channel("ch_1", org.id, "INSTAGRAM", "acme_store", "1784", "tok", T0)
        tx.insert_channel(channel)
        tx.insert_webhook(
            Webhook(
                "wh_1",
                org.id,
                "crm",
                "https://example.com/h",
                "INSTAGRAM",
                (channel.id,),
                ("conversation.opened",),
                True,
                None,
                "whsec_" + "A" * 43,
                T0,
                T0,
            )
        )

    db.run_sync(run)


def dm(igsid: str, mid: str) -> bytes:
    item = n.text_message(igsid, "1784", mid, T0, "hi")
    return n.encode(n.notification([n.entry("1784", [item])]))


async def test_processing_at_receipt_happens_in_the_inbound_commit(db: Database) -> None:
    setup_org(db)
    writer = InboundWriter(db, lambda: T0)
    reports: list[ProcessReport] = []
    writer.process_with(InlineProcessing(ProcessingPolicy(), reports.append))
    try:
        processed = await asyncio.gather(*(writer.store(dm(f"c{i}", f"m{i}")) for i in range(5)))
    finally:
        await writer.aclose()
    assert processed == [True] * 5  # nothing left for the processor
    assert sum(r.openings for r in reports) == 5
    assert db.run_sync(lambda tx: tx.pending_notifications(10)) == []


async def test_without_processing_at_receipt_notifications_wait_for_the_processor(
    db: Database,
) -> None:
    setup_org(db)
    writer = InboundWriter(db, lambda: T0)
    try:
        assert await writer.store(dm("c1", "m1")) is False
    finally:
        await writer.aclose()
    assert len(db.run_sync(lambda tx: tx.pending_notifications(10))) == 1


async def test_a_processing_failure_at_receipt_still_acknowledges_and_leaves_it_pending(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_org(db)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in processing")

    monkeypatch.setattr("convohook.usecases.processing.apply_item", broken)
    writer = InboundWriter(db, lambda: T0)
    reports: list[ProcessReport] = []
    writer.process_with(InlineProcessing(ProcessingPolicy(), reports.append))
    try:
        assert await writer.store(dm("c1", "m1")) is False  # stored; the processor is woken
    finally:
        await writer.aclose()
    assert reports == []
    assert len(db.run_sync(lambda tx: tx.pending_notifications(10))) == 1
