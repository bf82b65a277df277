"""Durable and relaxed commits: what precedes an acknowledgement or a webhook waits for the disk;
the workers' internal steps do not (a later durable commit covers them, both logs being ordered)."""

from __future__ import annotations

from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.orgs import create_org, org_for_api_key


def commit_setting(tx: Transaction, dialect: str) -> str:
    if dialect == "sqlite":
        level = tx._x("PRAGMA synchronous").fetchone()[0]  # type: ignore[attr-defined]
        return {1: "normal", 2: "full"}[int(level)]
    return str(tx._x("SHOW synchronous_commit").fetchone()[0])  # type: ignore[attr-defined]


def test_relaxed_commits_skip_the_flush_and_durable_ones_keep_it(db: Database) -> None:
    dialect = db.dialect
    durable = {"sqlite": "full", "postgresql": "on"}[dialect]
    relaxed = {"sqlite": "normal", "postgresql": "off"}[dialect]

    assert db.run_sync(commit_setting, dialect) == durable
    assert db.relaxed.run_sync(commit_setting, dialect) == relaxed
    assert db.run_sync(commit_setting, dialect) == durable  # the view changes nothing behind it
    assert db.relaxed.run_sync(commit_setting, dialect) == relaxed


async def test_what_is_committed_relaxed_is_there_for_everyone(db: Database) -> None:
    created = await db.relaxed.run(create_org, "Relaxed", 1)
    found = await db.read(org_for_api_key, created.api_key)
    assert found is not None
    assert found.id == created.org.id
