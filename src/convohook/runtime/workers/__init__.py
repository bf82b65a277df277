"""The worker loops behind the inbound receiver, one module each: the processor, the profile
enricher, the dispatcher, the closer (inactivity) and the janitor; `run_workers` runs them
together."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from convohook.runtime.services import Services
from convohook.runtime.workers.closer import Closer
from convohook.runtime.workers.dispatcher import Dispatcher
from convohook.runtime.workers.janitor import Janitor
from convohook.runtime.workers.processor import Processor
from convohook.runtime.workers.profiles import ProfileEnricher

__all__ = ["Closer", "Dispatcher", "Janitor", "Processor", "ProfileEnricher", "run_workers"]


def _wake_on_notify(services: Services, loop: asyncio.AbstractEventLoop) -> Callable[[str], None]:
    signals = services.signals
    targets = {
        "notifications": [signals.notifications],
        "profiles": [signals.profiles],
        "deliveries": [signals.deliveries],
    }
    everything = [signals.notifications, signals.profiles, signals.deliveries]

    def on_notify(what: str) -> None:
        for signal in targets.get(what, everything):
            loop.call_soon_threadsafe(signal.notify)

    return on_notify


async def run_workers(services: Services, *, watch_other_processes: bool = False) -> None:
    """Run all three loops until cancelled. Other processes' writes wake them too: always on
    PostgreSQL (NOTIFY), and on SQLite with `watch_other_processes` (a `convohook worker` beside
    a `serve --no-worker`; in `serve` itself every write is this process's own and wakes the
    loops directly, so watching would only add empty rounds)."""
    storage = services.db.storage
    stop = threading.Event()
    if watch_other_processes or not storage.listen_polls:
        on_notify = _wake_on_notify(services, asyncio.get_running_loop())
        threading.Thread(
            target=storage.listen, args=(on_notify, stop), name="convohook-listen", daemon=True
        ).start()
    enricher = ProfileEnricher(services)
    loops = [
        Processor(services, handoff=enricher).run(),
        enricher.run(),
        Dispatcher(services).run(),
        Closer(services).run(),
        Janitor(services).run(),
    ]
    try:
        await asyncio.gather(*loops)
    finally:
        stop.set()
        await enricher.cancel_handed()
