"""In-process wake-ups: a worker sleeps until there is work, not on a fast polling timer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence


class Signal:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        # Workers in `wait` now: notified, one takes the work at once (read from the database's
        # threads too, to tell whether other processes need to hear of the work: a plain int).
        self.waiting = 0

    def notify(self) -> None:
        self._event.set()

    @property
    def takes_at_once(self) -> bool:
        """Whether new work is taken without help: a worker waits for it, or is in a round
        with nothing queued yet (it looks again right after, woken by the writer). Otherwise
        its worker is behind, and other processes may share the load."""
        return self.waiting > 0 or not self._event.is_set()

    @property
    def pending(self) -> bool:
        """Notified, and its worker has not woken for it yet: work waits."""
        return self._event.is_set()

    async def wait(self, timeout: float) -> None:
        """Return when notified or after `timeout` seconds (the safety net for work another
        process wrote, which cannot notify us)."""
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout=max(timeout, 0.0))
        finally:
            self.waiting -= 1
        self._event.clear()

    async def wait_until(self, due_at_ms: int | None, now_ms: int, poll_seconds: float) -> None:
        """Return when notified, when the next piece of work is due (`due_at_ms`, None for
        none known), or after `poll_seconds` at most."""
        timeout = poll_seconds
        if due_at_ms is not None:
            timeout = min(timeout, max(0.0, (due_at_ms - now_ms) / 1000))
        await self.wait(timeout)


async def wait_any(signals: Sequence[Signal], timeout: float) -> None:
    """Return when any of `signals` is notified, or after `timeout` seconds; all are cleared
    (the caller is about to look at everything they stand for)."""
    waits = [asyncio.ensure_future(signal._event.wait()) for signal in signals]
    for signal in signals:
        signal.waiting += 1
    try:
        await asyncio.wait(waits, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signal in signals:
            signal.waiting -= 1
        for wait in waits:
            wait.cancel()
        for signal in signals:
            signal._event.clear()


class Broadcast:
    """Wakes every waiter at once (Signal wakes one worker): for live views, many per change.

    Take `current()` before reading the state you show, then `wait` on it: a change that lands
    in between still wakes you, because it completed the very event you hold.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    @staticmethod
    async def wait(change: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(change.wait(), timeout=max(timeout, 0.0))
