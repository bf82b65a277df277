"""The worker loops behind the inbound receiver, one module each: the processor, the profile
enricher, the dispatcher, the sender (replies), the closer (inactivity), the bot runner and the
janitor;
`run_workers` runs them together."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from convohook.runtime.services import Services
from convohook.runtime.signal import Signal
from convohook.runtime.workers.bot_runner import BotRunner
from convohook.runtime.workers.closer import Closer
from convohook.runtime.workers.dispatcher import Dispatcher
from convohook.runtime.workers.janitor import Janitor
from convohook.runtime.workers.processor import Processor
from convohook.runtime.workers.profiles import ProfileEnricher
from convohook.runtime.workers.sender import Sender

__all__ = [
    "BotRunner",
    "Closer",
    "Dispatcher",
    "Janitor",
    "Processor",
    "ProfileEnricher",
    "Sender",
    "run_workers",
]


def _by_kind(services: Services) -> dict[str, Signal]:
    """The signal of each kind of work named in NOTIFYs (`Storage.listen`)."""
    signals = services.signals
    return {
        "notifications": signals.notifications,
        "profiles": signals.profiles,
        "deliveries": signals.deliveries,
        "replies": signals.replies,
        "bots": signals.bots,
    }


def _wake_on_notify(services: Services, loop: asyncio.AbstractEventLoop) -> Callable[[str], None]:
    targets = _by_kind(services)
    everything = list(targets.values())

    def on_notify(what: str) -> None:
        target = targets.get(what)
        for signal in [target] if target is not None else everything:
            loop.call_soon_threadsafe(signal.notify)

    return on_notify


def _waiting_here(services: Services) -> Callable[[str], bool]:
    """Whether this process's worker for a kind takes new work of it at once
    (`Signal.takes_at_once`)."""
    targets = _by_kind(services)

    def waiting(kind: str) -> bool:
        signal = targets.get(kind)
        return signal is not None and signal.takes_at_once

    return waiting


async def run_workers(services: Services, *, watch_other_processes: bool = False) -> None:
    """Run all the loops until cancelled. Other processes' writes wake them too: always on
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
    storage.workers_waiting(_waiting_here(services))
    dispatcher = Dispatcher(services)
    enricher = ProfileEnricher(services, dispatcher=dispatcher)
    loops = [
        asyncio.create_task(loop)
        for loop in (
            Processor(services, handoff=enricher).run(),
            enricher.run(),
            dispatcher.run(),
            Sender(services).run(),
            Closer(services).run(),
            BotRunner(services).run(),
            Janitor(services).run(),
        )
    ]
    try:
        await asyncio.gather(*loops)
    finally:
        # gather() ends with the first loop that ends, cancelled or not: wait for every loop's
        # own way out too (the sender records the answers of the calls it had in flight),
        # before the sessions and the database close under them. The handed-over lookups
        # first: one finishing later would hand the stopped dispatcher deliveries to send.
        await enricher.cancel_handed()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        storage.workers_waiting(None)
        stop.set()
