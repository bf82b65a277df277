"""`GET /readyz`: can this process do its job? The database answers, its schema is the one this
version needs, and the worker loops it runs are coming round."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from convohook.runtime.services import Services
from convohook.storage import migrations
from convohook.usecases.status import applied_migrations

DATABASE_TIMEOUT_S = 5.0
LOOPS = ("processor", "profiles", "dispatcher", "sender", "bots")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]  # check -> "ok", or what is wrong and what to do


def stale_after(services: Services) -> float:
    """How long a loop may go without coming round: an idle loop waits up to the idle poll, a
    busy dispatcher for slots that each free within two attempt timeouts."""
    settings = services.settings
    return 2 * max(settings.idle_poll_seconds, settings.delivery_timeout) + 30


async def check(services: Services) -> Readiness:
    checks = {"database": "ok", "migrations": "ok", "workers": "ok"}
    try:
        applied = await asyncio.wait_for(services.db.read(applied_migrations), DATABASE_TIMEOUT_S)
    except Exception as exc:  # any failure to answer is the finding itself
        checks["database"] = f"unreachable: {str(exc) or type(exc).__name__}"
        checks["migrations"] = "unknown"
    else:
        pending = [m.name for m in migrations.load(services.db.dialect) if m.version not in applied]
        if pending:
            checks["migrations"] = f"pending: {', '.join(pending)} (run `convohook migrate`)"
    checks["workers"] = _workers(services)
    ready = all(v == "ok" or v.startswith("not run") for v in checks.values())
    return Readiness(ready, checks)


def _workers(services: Services) -> str:
    task = services.workers
    if task is None:
        return "not run in this process (serve --no-worker): check the `convohook worker`s"
    if task.done():
        return "stopped: see the log for why, and restart"
    now = time.monotonic()
    limit = stale_after(services)
    late = [loop for loop in LOOPS if now - services.beats.get(loop, float("-inf")) > limit]
    if late:
        return f"stuck: {', '.join(late)} not seen for over {limit:g} s"
    return "ok"
