"""`GET /readyz`: 200 when the database answers, its schema is current and the workers come
round; 503 saying what is wrong otherwise. `/healthz` stays 200 throughout (the process lives)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from harness import TIMEOUT, Running, admin_execute, running_convohook

pytestmark = pytest.mark.slow


async def _get(run: Running, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.get(run.base + path) as answer,
    ):
        return answer.status, await answer.json()


async def _ready(run: Running) -> dict[str, str]:
    """Wait out start-up (the loops' first round), then expect ready."""
    async with asyncio.timeout(10):
        while (found := await _get(run, "/readyz"))[0] != 200:
            await asyncio.sleep(0.05)
    _, body = found
    assert body["status"] == "ready"
    return dict(body["checks"])


async def _not_ready(run: Running) -> dict[str, str]:
    status, body = await _get(run, "/readyz")
    assert status == 503, body
    assert body["status"] == "not ready"
    assert (await _get(run, "/healthz"))[0] == 200
    return dict(body["checks"])


async def test_ready_then_a_pending_migration_then_ready_again(database_url_for: str) -> None:
    async with running_convohook(database_url_for, "s") as run:
        assert await _ready(run) == {"database": "ok", "migrations": "ok", "workers": "ok"}
        db = run.services.db
        [(version, name, at)] = await db.read(
            lambda tx: tx._x(
                "SELECT version, name, applied_at_ms FROM schema_migrations "
                "ORDER BY version DESC LIMIT 1"
            ).fetchall()
        )
        # As if this version's last migration had not been applied yet.
        await db.run(
            lambda tx: tx._x("DELETE FROM schema_migrations WHERE version = ?", (version,))
        )
        checks = await _not_ready(run)
        assert checks["migrations"] == f"pending: {name} (run `convohook migrate`)"
        await db.run(
            lambda tx: tx._x(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
                (version, name, at),
            )
        )
        await _ready(run)


async def test_stopped_or_stuck_workers_are_not_ready(tmp_path: Any) -> None:
    async with running_convohook(f"sqlite:///{tmp_path / 'r.db'}", "s") as run:
        await _ready(run)
        services = run.services
        services.beats["dispatcher"] = time.monotonic() - 100_000
        assert (await _not_ready(run))["workers"].startswith("stuck: dispatcher not seen for")
        services.beat("dispatcher")
        await _ready(run)

        workers = services.workers
        assert workers is not None
        workers.cancel()
        await asyncio.sleep(0.1)
        assert (await _not_ready(run))["workers"].startswith("stopped")

        services.workers = None  # as in `serve --no-worker`: workers are another process's
        checks = await _ready(run)
        assert checks["workers"].startswith("not run in this process")


async def test_a_database_that_stops_answering_is_not_ready(postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    async with running_convohook(postgres_url, "s") as run:
        await _ready(run)
        admin_execute(
            f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
        try:
            checks = await _not_ready(run)
            assert checks["database"].startswith("unreachable: ")
            assert checks["database"] != "unreachable: "  # says why
            assert checks["migrations"] == "unknown"
        finally:
            # How soon it is ready again is test_postgres_outage.py's subject.
            admin_execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
