"""Tags on conversations, set by hand (UI, API) or, later, by bots (DESIGN section 7)."""

from __future__ import annotations

from collections.abc import Sequence

from convohook.domain.model import Conversation
from convohook.domain.text import NUL_MESSAGE, has_nul, trimmed
from convohook.storage.base import Transaction
from convohook.usecases.conversations import get_conversation
from convohook.usecases.errors import Conflict, Invalid

TAG_MAX_LENGTH = 50
# Enough for any triage scheme; a bound keeps every listing's row small.
MAX_TAGS = 20


def clean_tags(field: str, tags: Sequence[str]) -> list[str]:
    """Trimmed, in order, without repeats; Invalid naming `field` for an unusable one."""
    cleaned: list[str] = []
    for tag in tags:
        value = trimmed(tag)
        if not value:
            raise Invalid(field, "a tag cannot be empty")
        if len(value) > TAG_MAX_LENGTH:
            raise Invalid(field, f"{value[:20]!r}…: a tag has at most {TAG_MAX_LENGTH} characters")
        if has_nul(value):
            raise Invalid(field, NUL_MESSAGE)
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


def change_tags(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    now_ms: int,
) -> Conversation:
    """Add, then remove (a tag in both ends up removed). Adding a tag it has changes nothing."""
    adding = clean_tags("add", add)
    removing = clean_tags("remove", remove)
    get_conversation(tx, org_id, conversation_id)  # another org's is not found, nor locked
    # Held until the commit: two changes at once each see the other's tags in the count.
    tx.lock_conversation(conversation_id)
    current = get_conversation(tx, org_id, conversation_id).tags
    after = (set(current) | set(adding)) - set(removing)
    if len(after) > MAX_TAGS:
        # The request is fine in itself; the conversation's tags so far leave no room for it.
        raise Conflict(
            f"add: a conversation has at most {MAX_TAGS} tags, and this one would have "
            f"{len(after)}: remove some first"
        )
    if adding:
        tx.add_tags(org_id, conversation_id, adding, now_ms)
    if removing:
        tx.remove_tags(conversation_id, removing)
    return get_conversation(tx, org_id, conversation_id)
