"""Shared fixtures. Backends are parametrized so one contract suite runs on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from convohook.storage.base import Storage
from convohook.storage.database import Database
from convohook.storage.sqlite import SQLiteStorage

BACKENDS = ["sqlite"]


def make_storage(backend: str, tmp_path: Path) -> Storage:
    if backend == "sqlite":
        return SQLiteStorage(f"sqlite:///{tmp_path / 'convohook.db'}")
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    store = make_storage(request.param, tmp_path)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def db(storage: Storage) -> Database:
    return Database(storage)


def find_shared_fixtures() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return None
