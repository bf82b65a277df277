"""Shared fixtures. Backends are parametrized so one contract suite runs on each.

PostgreSQL tests get a database of their own, cloned from a migrated template (fast, isolated).
Without a reachable PostgreSQL they are skipped with the reason, except in CI, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from convohook.storage.base import Storage
from convohook.storage.database import Database
from convohook.storage.sqlite import SQLiteStorage

from harness import ADMIN_URL, admin_execute, database_url

# One template per test session: sessions run side by side (two checkouts, a helper) each
# migrate their own, and none drops another's.
TEMPLATE = f"convohook_test_template_{os.getpid()}"

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated template database, made once per test session."""
    try:
        admin_execute(
            f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"
        )
    except Exception as exc:
        reason = f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run every PostgreSQL test)")
        pytest.skip(reason)
    from convohook.storage.postgres import PostgresStorage

    storage = PostgresStorage(database_url(TEMPLATE), pool_size=1)
    storage.migrate()
    storage.close()
    yield TEMPLATE
    admin_execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    template = request.getfixturevalue("postgres_template")
    name = f"convohook_t_{uuid.uuid4().hex[:12]}"
    admin_execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield database_url(name)
    admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def make_storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if backend == "sqlite":
        return SQLiteStorage(f"sqlite:///{tmp_path / 'convohook.db'}")
    from convohook.storage.postgres import PostgresStorage

    return PostgresStorage(request.getfixturevalue("postgres_url"), pool_size=4)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    store = make_storage(backend, tmp_path, request)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def db(storage: Storage) -> Database:
    return Database(storage, threads=1 if storage.dialect == "sqlite" else 4)


@pytest.fixture
def database_url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty-but-migrated database URL of the parametrized backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'convohook.db'}"
    return str(request.getfixturevalue("postgres_url"))
