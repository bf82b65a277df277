"""Contacts: one per customer and channel, with the `dtCustomerId` every webhook carries."""

from __future__ import annotations

from convohook.domain.model import Contact
from convohook.storage.base import Transaction


def list_contacts(
    tx: Transaction,
    org_id: str,
    *,
    handle: str | None,
    channel_id: str | None,
    cursor: str | None,
    limit: int,
) -> list[Contact]:
    """`handle`: the customer's Instagram username, with or without its @."""
    return tx.list_contacts(
        org_id,
        handle=handle.removeprefix("@") if handle else None,
        channel_id=channel_id,
        before=cursor,
        limit=limit,
    )
