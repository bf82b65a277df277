"""`AtCommit`: a transaction's last result, read once and only when asked for."""

from __future__ import annotations

from convohook.storage.at_commit import AtCommit


def test_it_is_read_once_when_first_asked_for() -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        return 41

    at_commit = AtCommit(read)
    doubled = at_commit.map(lambda n: n + 1)
    assert reads == []  # nothing read before the commit
    assert doubled.get() == 42
    assert at_commit.get() == 41
    assert doubled.get() == 42
    assert reads == [1]


def test_a_value_known_at_once_is_given_back_as_is() -> None:
    value = ["claimed"]
    assert AtCommit.now(value).get() is value
    assert AtCommit.now(2).map(str).get() == "2"
