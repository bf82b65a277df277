"""In-process wake-ups (runtime/signal.py): what the bot runner waits on while its runs wait
for a webhook's first attempt or a profile, and what it gives way to."""

from __future__ import annotations

import asyncio

from convohook.runtime.signal import Signal, wait_any


async def test_wait_any_returns_on_the_first_signal_and_clears_both() -> None:
    runs, webhooks = Signal(), Signal()
    asyncio.get_running_loop().call_soon(webhooks.notify)
    # Its own timeout is an hour: returning at all means it was woken.
    await asyncio.wait_for(wait_any([runs, webhooks], timeout=3600), timeout=30)
    assert not runs.pending
    assert not webhooks.pending


async def test_wait_any_times_out_when_nothing_comes() -> None:
    quiet = [Signal(), Signal()]
    await wait_any(quiet, timeout=0.01)
    assert not any(signal.pending for signal in quiet)


async def test_pending_is_work_not_yet_picked_up() -> None:
    signal = Signal()
    assert not signal.pending
    signal.notify()
    assert signal.pending  # what the bot runner gives way to
    await signal.wait(timeout=1)
    assert not signal.pending


async def test_waiting_counts_the_workers_in_a_wait_of_either_kind() -> None:
    """Read by the storage to leave out of its NOTIFY what a worker here takes at once."""
    runs, webhooks = Signal(), Signal()
    alone = asyncio.create_task(runs.wait(3600))
    both = asyncio.create_task(wait_any([runs, webhooks], 3600))
    await asyncio.sleep(0)
    assert (runs.waiting, webhooks.waiting) == (2, 1)
    runs.notify()
    await asyncio.wait_for(asyncio.gather(alone, both), timeout=30)
    assert (runs.waiting, webhooks.waiting) == (0, 0)
    timed_out = asyncio.create_task(runs.wait(0.01))
    await asyncio.sleep(0)
    assert runs.waiting == 1
    await timed_out
    assert runs.waiting == 0


async def test_new_work_is_taken_at_once_unless_the_worker_is_behind() -> None:
    """Mid-round with nothing queued, or waiting: taken here. Mid-round with work already
    queued: behind, so other processes are told (storage/postgres.Announcer)."""
    signal = Signal()
    assert signal.takes_at_once  # in a round, nothing queued
    signal.notify()
    assert not signal.takes_at_once  # in a round, and more already waits for it
    waiter = asyncio.create_task(signal.wait(3600))
    await waiter  # takes what was queued
    assert signal.takes_at_once
    idle = asyncio.create_task(signal.wait(3600))
    await asyncio.sleep(0)
    signal.notify()
    assert signal.takes_at_once  # notified while waiting: it is waking for it now
    await asyncio.wait_for(idle, timeout=30)
