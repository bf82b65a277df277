"""Channels: an org's Instagram accounts, connected once each."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from convohook.domain.ids import new_id
from convohook.domain.inactivity import check_auto_done_after
from convohook.domain.model import Channel
from convohook.domain.text import NUL_MESSAGE, has_nul
from convohook.storage.base import Transaction
from convohook.usecases.errors import Conflict, Invalid, NotFound

INSTAGRAM = "INSTAGRAM"
# The rules of a new channel, said once: the API's request model publishes them in the OpenAPI
# document, and connect_channel() enforces them for every door (the UI's form has no other).
HANDLE_MAX_LENGTH = 100
ACCOUNT_ID_MAX_LENGTH = 64
ACCOUNT_ID_PATTERN = r"^[0-9A-Za-z_-]+$"
ACCESS_TOKEN_MAX_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class NewChannel:
    handle: str
    account_id: str  # entry[].id in Meta's notifications
    access_token: str


def check_new_channel(new: NewChannel) -> None:
    """Invalid naming the first field that breaks the rules above."""
    for name, value, longest in (
        ("handle", new.handle, HANDLE_MAX_LENGTH),
        ("account_id", new.account_id, ACCOUNT_ID_MAX_LENGTH),
        ("access_token", new.access_token, ACCESS_TOKEN_MAX_LENGTH),
    ):
        if not value:
            raise Invalid(name, "required")
        if len(value) > longest:
            raise Invalid(name, f"at most {longest} characters")
        if has_nul(value):
            raise Invalid(name, NUL_MESSAGE)
    if not re.fullmatch(ACCOUNT_ID_PATTERN, new.account_id):
        raise Invalid(
            "account_id",
            "the Instagram professional account id: letters, digits, _ and - only "
            "(entry[].id in Meta's notifications)",
        )


def connect_channel(tx: Transaction, org_id: str, new: NewChannel, now_ms: int) -> Channel:
    """Connect an Instagram account. An account is connected once, whichever org has it: its
    notifications must lead to exactly one channel."""
    check_new_channel(new)
    if tx.channel_by_account(new.account_id) is not None:
        raise Conflict(
            f"Instagram account {new.account_id} is already connected as a channel; "
            "each account can be connected once"
        )
    channel = Channel(
        id=new_id("ch", now_ms),
        org_id=org_id,
        type=INSTAGRAM,
        handle=new.handle.removeprefix("@"),
        account_id=new.account_id,
        access_token=new.access_token,
        created_at_ms=now_ms,
    )
    tx.insert_channel(channel)
    return channel


def list_channels(tx: Transaction, org_id: str, cursor: str | None, limit: int) -> list[Channel]:
    return tx.list_channels(org_id, cursor, limit)


def channel_handles(tx: Transaction, org_id: str) -> dict[str, str]:
    """Every channel's handle by id, for pages that name channels."""
    return {c.id: c.handle for c in tx.list_channels(org_id, None, 1000)}


def check_channels(tx: Transaction, org_id: str, channel_ids: tuple[str, ...]) -> None:
    """Every one of `channel_ids` is a channel of this org, or Invalid names those that are not."""
    unknown = [c for c in channel_ids if tx.get_channel(org_id, c) is None]
    if unknown:
        raise Invalid(
            "channel_ids",
            f"unknown channel(s) {', '.join(unknown)}: connect the account first "
            "(Settings → Channels, or POST /api/v1/channels) and use its id",
        )


def unknown_accounts(tx: Transaction, account_ids: list[str]) -> list[str]:
    """Those of `account_ids` that no channel has: their notifications are acknowledged and
    skipped (`convohook simulate dm` says so)."""
    return [a for a in dict.fromkeys(account_ids) if tx.channel_by_account(a) is None]


def get_channel(tx: Transaction, org_id: str, channel_id: str) -> Channel:
    channel = tx.get_channel(org_id, channel_id)
    if channel is None:
        raise NotFound("channel", channel_id)
    return channel


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    """What a person asked to change; None leaves `handle` and `access_token` as they are.
    `auto_done_after` is applied only when `change_auto_done_after` (None turns the rule off)."""

    handle: str | None = None
    access_token: str | None = None
    auto_done_after: int | None = None
    change_auto_done_after: bool = False


def update_channel(
    tx: Transaction, org_id: str, channel_id: str, changes: ChannelChanges
) -> Channel:
    """Change a channel (the fields by the rules of `check_new_channel`). A new
    `auto_done_after` counts at once: the closer closes a conversation only when its deadline
    by the current setting has passed, and it recomputes the stored deadlines of the channel's
    open conversations in bounded batches within seconds (usecases/inactivity.py)."""
    for name, value, longest in (
        ("handle", changes.handle, HANDLE_MAX_LENGTH),
        ("access_token", changes.access_token, ACCESS_TOKEN_MAX_LENGTH),
    ):
        if value is None:
            continue
        if not value:
            raise Invalid(name, "required")
        if len(value) > longest:
            raise Invalid(name, f"at most {longest} characters")
        if has_nul(value):
            raise Invalid(name, NUL_MESSAGE)
    if changes.change_auto_done_after:
        why = check_auto_done_after(changes.auto_done_after)
        if why is not None:
            raise Invalid("auto_done_after", why)
    channel = tx.lock_channel(org_id, channel_id)
    if channel is None:
        raise NotFound("channel", channel_id)
    changed = replace(
        channel,
        handle=channel.handle if changes.handle is None else changes.handle.removeprefix("@"),
        access_token=(
            channel.access_token if changes.access_token is None else changes.access_token
        ),
        auto_done_after=(
            changes.auto_done_after if changes.change_auto_done_after else channel.auto_done_after
        ),
    )
    if changed == channel:
        return channel
    tx.update_channel(changed)
    if changed.auto_done_after != channel.auto_done_after:
        tx.start_rescheduling(channel.id)
    return changed
