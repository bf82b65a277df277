"""After PostgreSQL comes back, convohook reconnects within seconds, not after a back-off that
has grown through the outage."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from convohook.storage import postgres
from convohook.storage.base import Transaction
from convohook.storage.errors import UnavailableError
from convohook.storage.postgres import PostgresStorage

from harness import admin_execute

pytestmark = pytest.mark.slow

# psycopg_pool's default back-off tries at about 1, 3, 7, 15 and 31 s (±10%): after 17.5 s
# down, it would next try 10 s or more after the database is back. A fresh round tries at once.
OUTAGE_S = 17.5
BACK_WITHIN_S = 8.0


def migrations(tx: Transaction) -> set[int]:
    return tx.applied_migrations()


@pytest.fixture
def storage(postgres_url: str) -> Iterator[PostgresStorage]:
    # One connection: every one the pool may have is being re-made, as when a loaded pool loses
    # them all, so nothing grows the pool around the back-off.
    store = PostgresStorage(postgres_url, pool_size=1)
    store.migrate()
    yield store
    store.close()


def test_the_first_transaction_after_an_outage_finds_a_connection(
    storage: PostgresStorage, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    with storage.transaction(write=False) as tx:
        assert migrations(tx)
    admin_execute(
        f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )
    try:
        with pytest.raises(UnavailableError), storage.transaction(write=False) as tx:
            migrations(tx)  # the pool learns its connection is gone and starts reconnecting
        time.sleep(OUTAGE_S)
    finally:
        admin_execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    back = time.monotonic()
    with storage.transaction(write=False) as tx:
        assert migrations(tx)
    waited = time.monotonic() - back
    assert waited < BACK_WITHIN_S, (
        f"{waited:.1f} s to reconnect (give-up after {postgres.RECONNECT_GIVE_UP_S} s)"
    )
