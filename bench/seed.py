"""What the database benchmarks start from: one org, its channel and a webhook on one event."""

from __future__ import annotations

from convohook.domain.ids import new_id
from convohook.domain.model import Channel, Webhook
from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.orgs import create_org

from common import ACCESS_TOKEN, ACCOUNT, HANDLE


def seed_channel(db: Database, now: int, event: str) -> Channel:
    """Migrate, then write an org with one channel and one webhook subscribed to `event` (its
    URL unreachable: the benchmarks make no POST)."""

    def write(tx: Transaction) -> Channel:
        org = create_org(tx, "bench", now).org
        channel = Channel(
            new_id("ch", now), org.id, "INSTAGRAM", HANDLE, ACCOUNT, ACCESS_TOKEN, now
        )
        tx.insert_channel(channel)
        tx.insert_webhook(
            Webhook(
                id=new_id("wh", now),
                org_id=org.id,
                name="bench",
                url="http://127.0.0.1:9/hook",
                channel_type="INSTAGRAM",
                channel_ids=(channel.id,),
                events=(event,),
                enabled=True,
                disabled_reason=None,
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                created_at_ms=now,
                updated_at_ms=now,
            )
        )
        return channel

    db.storage.migrate()
    return db.run_sync(write)
