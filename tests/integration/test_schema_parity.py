"""Both dialects' migrations build the same schema: a fresh SQLite file and a fresh PostgreSQL
database, migrated, have the same tables, columns (type family, nullability, default), keys,
foreign keys, unique constraints, indexes and checks. The shared SQL (storage/sql/) relies on
it; a column or an index added to one dialect's migration only fails here, named.

Each schema is read back from the database itself (SQLite's pragmas and `sqlite_master`,
PostgreSQL's catalogs) and reduced to facts keyed by what they are about, such as
`column webhooks.enabled` or `index deliveries_due`, with engine-specific spellings normalised:
`BIGINT` and `INTEGER` are both integers, `'open'::text` is `'open'`, `x = ANY (ARRAY[…])` is
`x IN (…)`, constraint and implicit index names are left out. Column order is not compared:
no query depends on it (none selects `*`)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from convohook.storage.postgres import PostgresStorage
from convohook.storage.sqlite import SQLiteStorage

from harness import ADMIN_URL, admin_execute

Facts = dict[str, str]

# Differences that are meant, each with why. The test fails if one of them is no longer there,
# so this list only ever holds real differences.
INTENDED: dict[str, str] = {
    "column webhooks.enabled": (
        "SQLite has no boolean type: 0001 declared `enabled INTEGER DEFAULT 1`, which SQLite "
        "stores exactly as a BOOLEAN column (numeric affinity, 0 or 1, TRUE and FALSE read as "
        "1 and 0). Changing the declaration would mean rebuilding the table for nothing."
    ),
}

FAMILIES = {
    "text": "text",
    "character varying": "text",
    "varchar": "text",
    "integer": "integer",
    "int": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "real": "real",
    "double precision": "real",
    "double": "real",
    "float": "real",
    "blob": "blob",
    "bytea": "blob",
    "boolean": "boolean",
}


def family(declared: str) -> str:
    name = declared.strip().lower()
    return FAMILIES.get(name, f"unknown type {name!r}")


def expression(text: str) -> str:
    """A CHECK or an index predicate, spelled alike whichever engine printed it."""
    text = re.sub(r"--[^\n]*", "", text)
    text = re.sub(r"::[a-z ]+(\[\])?", "", text, flags=re.I)  # PostgreSQL's casts
    # PostgreSQL prints `x IN ('a', 'b')` as `x = ANY (ARRAY['a', 'b'])`.
    text = re.sub(r"=\s*ANY\s*\(\s*ARRAY\[(.*?)\]\s*\)", r" IN (\1)", text, flags=re.I)
    # Parentheses, spaces and keywords' case differ in how each engine prints, not in what
    # the rule says; string literals are kept as they are.
    parts = re.split(r"('(?:[^']|'')*')", text)
    return "".join(
        part if part.startswith("'") else re.sub(r"[()\s]", "", part).lower() for part in parts
    )


def default(value: str | None, kind: str) -> str:
    if value is None:
        return "no default"
    text = re.sub(r"::[a-z ]+$", "", value.strip(), flags=re.I).lower()
    if kind == "boolean":
        text = {"1": "true", "0": "false"}.get(text, text)
    return f"default {text}"


def column_fact(kind: str, not_null: bool, dflt: str | None) -> str:
    return f"{kind}, {'NOT NULL' if not_null else 'NULL'}, {default(dflt, kind)}"


def _checks(create_table: str) -> Iterator[str]:
    """The CHECK expressions of a CREATE TABLE statement (columns' and the table's)."""
    sql = re.sub(r"--[^\n]*", "", create_table)
    for match in re.finditer(r"\bCHECK\s*\(", sql, re.I):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        yield sql[match.end() : i - 1]


def sqlite_schema(path: Path) -> Facts:
    facts: Facts = {}
    conn = sqlite3.connect(path)
    try:
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        for table, sql in tables:
            facts[f"table {table}"] = "present"
            primary: list[tuple[int, str]] = []
            for _, name, declared, not_null, dflt, pk in conn.execute(
                f"PRAGMA table_info({table})"
            ):
                kind = family(declared)
                # SQLite lets a non-INTEGER primary key hold NULL (a documented quirk kept for
                # compatibility); a key means NOT NULL here, as it does in PostgreSQL.
                facts[f"column {table}.{name}"] = column_fact(kind, bool(not_null or pk), dflt)
                if pk:
                    primary.append((pk, name))
            if primary:
                facts[f"primary key {table}"] = ", ".join(name for _, name in sorted(primary))
            keys: dict[int, list[tuple[str, str, str, str]]] = {}
            for key_id, _, target, source, to, _, on_delete, _ in conn.execute(
                f"PRAGMA foreign_key_list({table})"
            ):
                keys.setdefault(key_id, []).append((source, target, to, on_delete))
            for parts in keys.values():
                sources = ", ".join(p[0] for p in parts)
                targets = ", ".join(p[2] for p in parts)
                facts[f"foreign key {table}({sources})"] = (
                    f"references {parts[0][1]}({targets}) on delete {parts[0][3].lower()}"
                )
            for _, index, unique, origin, _ in conn.execute(f"PRAGMA index_list({table})"):
                columns = ", ".join(
                    row[2] for row in conn.execute(f"PRAGMA index_info({index})")
                )  # in the index's order (seqno)
                if origin == "u":
                    facts[f"unique {table}({columns})"] = "present"
                elif origin == "c":
                    [index_sql] = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                        (index,),
                    ).fetchone()
                    where = re.search(r"\bWHERE\b(.*)$", index_sql, re.I | re.S)
                    facts[f"index {index}"] = _index_fact(
                        table, columns, bool(unique), where.group(1) if where else None
                    )
            for check in _checks(sql):
                facts[f"check {table}: {expression(check)}"] = "present"
    finally:
        conn.close()
    return facts


def _index_fact(table: str, columns: str, unique: bool, predicate: str | None) -> str:
    fact = f"{'unique ' if unique else ''}on {table}({columns})"
    return fact + (f" where {expression(predicate)}" if predicate else "")


def postgres_schema(url: str) -> Facts:
    facts: Facts = {}
    with psycopg.connect(url) as conn:
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ):
            facts[f"table {table}"] = "present"
        for table, name, declared, nullable, dflt, identity in conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "is_identity FROM information_schema.columns WHERE table_schema = current_schema()"
        ):
            # An identity column's values come from its sequence: SQLite's AUTOINCREMENT.
            dflt = None if identity == "YES" else dflt
            facts[f"column {table}.{name}"] = column_fact(family(declared), nullable == "NO", dflt)
        for table, kind, definition in conn.execute(
            "SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace"
        ):
            facts.update(_constraint_facts(table, kind, definition))
        for index, table, unique, predicate, columns in conn.execute(
            """
            SELECT i.relname, t.relname, x.indisunique, pg_get_expr(x.indpred, x.indrelid),
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(n, o)
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                         ORDER BY k.o)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relnamespace = current_schema()::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            """
        ):
            facts[f"index {index}"] = _index_fact(table, ", ".join(columns), unique, predicate)
    return facts


def _constraint_facts(table: str, kind: str, definition: str) -> Facts:
    def names(text: str) -> str:
        return ", ".join(part.strip() for part in text.split(","))

    if kind == "p":
        [columns] = re.findall(r"PRIMARY KEY \((.*?)\)", definition)
        return {f"primary key {table}": names(columns)}
    if kind == "u":
        [columns] = re.findall(r"UNIQUE \((.*?)\)", definition)
        return {f"unique {table}({names(columns)})": "present"}
    if kind == "f":
        match = re.fullmatch(
            r"FOREIGN KEY \((.*?)\) REFERENCES (\w+)\((.*?)\)(?: ON DELETE ([A-Z ]+))?",
            definition,
        )
        assert match, definition
        source, target, to, on_delete = match.groups()
        return {
            f"foreign key {table}({names(source)})": (
                f"references {target}({names(to)}) on delete {(on_delete or 'NO ACTION').lower()}"
            )
        }
    if kind == "c":
        [check] = re.findall(r"^CHECK \((.*)\)$", definition)
        return {f"check {table}: {expression(check)}": "present"}
    return {f"constraint {kind} on {table}": definition}  # a kind this test does not know yet


def differences(sqlite: Facts, postgres: Facts) -> dict[str, str]:
    """What differs, by fact: `only in sqlite: …`, or both sides' versions."""
    found = {}
    for key in sorted(sqlite.keys() | postgres.keys()):
        left, right = sqlite.get(key), postgres.get(key)
        if left == right:
            continue
        if right is None:
            found[key] = f"only in sqlite ({left})"
        elif left is None:
            found[key] = f"only in postgresql ({right})"
        else:
            found[key] = f"sqlite has {left}; postgresql has {right}"
    return found


def report(found: dict[str, str]) -> str:
    return "the migrated schemas differ (storage/migrations/sqlite vs postgresql):\n" + "\n".join(
        f"  {key}: {what}" for key, what in found.items()
    )


@pytest.fixture
def migrated(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, str]]:
    """A fresh SQLite file and a fresh PostgreSQL database, each migrated."""
    request.getfixturevalue("postgres_template")  # PostgreSQL is reachable (or skip/fail)
    path = tmp_path / "parity.db"
    sqlite = SQLiteStorage(f"sqlite:///{path}")
    sqlite.migrate()
    sqlite.close()
    name = f"convohook_parity_{uuid.uuid4().hex[:12]}"
    admin_execute(f"CREATE DATABASE {name}")
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        postgres = PostgresStorage(url, pool_size=1)
        postgres.migrate()
        postgres.close()
        yield path, url
    finally:
        admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_both_dialects_migrate_to_the_same_schema(migrated: tuple[Path, str]) -> None:
    path, url = migrated
    sqlite, postgres = sqlite_schema(path), postgres_schema(url)
    assert len(sqlite) > 100  # read, not vacuously equal

    found = differences(sqlite, postgres)

    unexpected = {key: what for key, what in found.items() if key not in INTENDED}
    assert not unexpected, report(unexpected)
    stale = sorted(INTENDED.keys() - found.keys())
    assert not stale, f"no longer different, remove from INTENDED: {stale}"


def test_a_difference_is_named_exactly(migrated: tuple[Path, str]) -> None:
    """The comparison itself: a column, an index, a check and a foreign key's rule added to
    one dialect are each reported, on their own line, saying where and what."""
    path, url = migrated
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        ALTER TABLE webhooks ADD COLUMN color TEXT NOT NULL DEFAULT 'blue';
        CREATE INDEX captures_method ON captures(method, bot_id) WHERE method = 'POST';
        """
    )
    conn.close()
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("ALTER TABLE bots ADD CHECK (name <> '')")
        pg.execute("ALTER TABLE captures ALTER COLUMN body DROP NOT NULL")

    found = differences(sqlite_schema(path), postgres_schema(url))

    assert {key: what for key, what in found.items() if key not in INTENDED} == {
        "check bots: name<>''": "only in postgresql (present)",
        "column captures.body": "sqlite has text, NOT NULL, no default; "
        "postgresql has text, NULL, no default",
        "column webhooks.color": "only in sqlite (text, NOT NULL, default 'blue')",
        "index captures_method": "only in sqlite (on captures(method, bot_id) where method='POST')",
    }
    assert "  column webhooks.color: only in sqlite" in report(found)
