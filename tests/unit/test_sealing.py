"""Secrets sealed at rest (storage/sealing.py): pure, no database."""

from __future__ import annotations

import pytest

from convohook.storage.sealing import (
    PLAIN,
    PREFIX,
    Sealer,
    SealError,
    key_id,
    new_key,
    parse_key,
    sealed_with,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COLUMN = "webhooks.secret"


def _key() -> bytes:
    return parse_key(new_key())


def test_a_sealed_secret_opens_and_shows_nothing_of_itself() -> None:
    sealer = Sealer(key=_key())
    stored = sealer.seal(COLUMN, SECRET)
    assert stored.startswith(PREFIX)
    assert SECRET not in stored
    assert SECRET[6:20] not in stored
    assert sealed_with(stored) == sealer.current_id
    assert sealer.open(COLUMN, stored) == SECRET


def test_each_seal_uses_a_fresh_nonce() -> None:
    sealer = Sealer(key=_key())
    assert sealer.seal(COLUMN, SECRET) != sealer.seal(COLUMN, SECRET)


def test_without_a_key_secrets_are_stored_as_given_and_read_back() -> None:
    assert PLAIN.seal(COLUMN, SECRET) == SECRET
    assert PLAIN.open(COLUMN, SECRET) == SECRET
    assert Sealer(key=_key()).open(COLUMN, SECRET) == SECRET  # written before the key was set


def test_a_sealed_secret_without_its_key_says_which_key_to_configure() -> None:
    sealer = Sealer(key=_key())
    stored = sealer.seal(COLUMN, SECRET)
    for other in (PLAIN, Sealer(key=_key())):
        with pytest.raises(SealError, match=f"{sealer.current_id}.*CONVOHOOK_ENCRYPTION_KEY"):
            other.open(COLUMN, stored)


def test_an_old_key_still_opens_and_marks_the_value_for_sealing_again() -> None:
    old, new = _key(), _key()
    stored = Sealer(key=old).seal(COLUMN, SECRET)
    rotated = Sealer(key=new, old_keys=[old])
    assert rotated.open(COLUMN, stored) == SECRET
    assert rotated.needs_sealing(stored)
    assert not rotated.needs_sealing(rotated.seal(COLUMN, SECRET))
    assert rotated.needs_sealing(SECRET)  # stored as given
    assert not PLAIN.needs_sealing(SECRET)  # nothing to seal with


def test_a_sealed_value_moved_to_another_column_or_altered_does_not_open() -> None:
    sealer = Sealer(key=_key())
    stored = sealer.seal(COLUMN, SECRET)
    with pytest.raises(SealError, match="damaged or moved"):
        sealer.open("channels.access_token", stored)
    flipped = stored[:-3] + ("A" if stored[-3] != "A" else "B") + stored[-2:]
    with pytest.raises(SealError, match="damaged or moved"):
        sealer.open(COLUMN, flipped)


# A fixed key plus four bytes (too long), not new_key()'s: test ids must be the same in every
# process that collects them (pytest-xdist compares them).
TOO_LONG = "ml0GcgQP7i3KnvBQhQdkb7jtc4PBI1wQqoAK1OGaBgo" + "AAAA"


@pytest.mark.parametrize("text", ["", "short", "!" * 43, TOO_LONG, "a,b"])
def test_a_malformed_key_is_refused_with_how_to_make_one(text: str) -> None:
    with pytest.raises(ValueError, match="convohook secrets new-key"):
        parse_key(text)


def test_a_key_round_trips_through_its_text_form() -> None:
    text = new_key()
    assert len(text) == 43
    assert len(parse_key(text)) == 32
    assert key_id(parse_key(text)) == key_id(parse_key(f"  {text}\n"))
