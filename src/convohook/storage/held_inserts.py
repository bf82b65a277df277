"""Inserts whose results nobody reads, held back and sent together: one multi-row INSERT per
table and statement instead of one statement per row.

PostgreSQL pays per statement (a protocol round of parse, bind and execute, an executor started
and stopped) and psycopg per `execute` call in Python; an opening inserts a row into five or
six tables, and a batch of openings repeated all of it row by row. Held rows are sent before
the transaction's next other statement (so every read sees them) and before commit.

Rows are sent table by table, in an order in which every foreign key points to a table sent
earlier: a conversation's contact is always there first, whatever order the use case wrote
them in. Only tables in that order are held; any other statement goes out at once, after what
is held. Pure: the backend executes what `take` returns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Every foreign key among these points to a table earlier in the tuple (the migrations say so,
# and tests/unit/test_held_inserts.py checks it against them).
TABLE_ORDER = (
    "notifications",
    "contacts",
    "conversations",
    "messages",
    "events",
    "deliveries",
    "attempts",
    "bot_runs",
)
# A batch of n rows goes out in chunks of these sizes (n = 37: 16 + 16 + 4 + 1): few distinct
# statement texts, so psycopg prepares each after its fifth use instead of planning every one.
CHUNK_SIZES = (256, 64, 16, 4, 1)

_INSERT = re.compile(r"INSERT INTO (\w+) \([^()]*\) VALUES ", re.IGNORECASE)


@dataclass
class _Statement:
    head: str  # INSERT INTO t (columns) VALUES
    row: str  # (?, ?, ...), subqueries included
    tail: str  # e.g. ON CONFLICT DO NOTHING
    rows: list[Sequence[Any]] = field(default_factory=list)

    def statements(self) -> list[tuple[str, list[Any]]]:
        out: list[tuple[str, list[Any]]] = []
        start = 0
        for size in CHUNK_SIZES:
            while len(self.rows) - start >= size:
                params = [p for row in self.rows[start : start + size] for p in row]
                out.append((self.head + ", ".join([self.row] * size) + self.tail, params))
                start += size
        return out


def split_insert(sql: str) -> tuple[str, str, str, str] | None:
    """(table, head, row, tail) of a single-row `INSERT ... VALUES (...)` that can take more
    rows; None for anything else (no VALUES list, RETURNING, more than one row)."""
    match = _INSERT.match(sql)
    if match is None or "RETURNING" in sql.upper():
        return None
    start = match.end()
    if sql[start : start + 1] != "(":
        return None
    depth = 0
    for i in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if depth == 0:
            tail = sql[i + 1 :]
            if tail.lstrip().startswith(","):
                return None
            return match.group(1).lower(), sql[:start], sql[start : i + 1], tail
    return None


class HeldInserts:
    def __init__(self) -> None:
        self._held: dict[str, dict[str, _Statement]] = {}  # by table, then statement text
        self._parsed: dict[str, tuple[str, str, str, str] | None] = {}

    def hold(self, sql: str, params: Sequence[Any]) -> bool:
        """Keep this row for later; False if the statement cannot be held (send it now)."""
        parts = self._parsed.get(sql)
        if sql not in self._parsed:
            parts = self._parsed[sql] = split_insert(sql)
        if parts is None or parts[0] not in TABLE_ORDER:
            return False
        table, head, row, tail = parts
        statement = self._held.setdefault(table, {}).get(sql)
        if statement is None:
            statement = self._held[table][sql] = _Statement(head, row, tail)
        statement.rows.append(params)
        return True

    def __bool__(self) -> bool:
        return bool(self._held)

    def take(self) -> list[tuple[str, list[Any]]]:
        """The statements to send now, in order; nothing is held afterwards."""
        out: list[tuple[str, list[Any]]] = []
        for table in TABLE_ORDER:
            for statement in self._held.get(table, {}).values():
                out.extend(statement.statements())
        self._held.clear()
        return out
