"""The log's group commit: one fsync serves every commit made before it started, and only those."""

import asyncio
import threading

import pytest

from convohook.storage.errors import UnavailableError
from convohook.storage.log_sync import LogSync


class GatedSync:
    """An fsync that finishes only when the test says so, recording each one started."""

    def __init__(self) -> None:
        self.started = 0
        self.gates: list[threading.Event] = []
        self.fail_next: Exception | None = None

    def __call__(self) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        self.started += 1
        failure, self.fail_next = self.fail_next, None
        assert gate.wait(10), "the test never let this sync finish"
        if failure is not None:
            raise failure

    async def wait_started(self, count: int) -> None:
        for _ in range(1000):
            if len(self.gates) >= count:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"{count} syncs never started (only {len(self.gates)})")


@pytest.fixture
def gated() -> GatedSync:
    return GatedSync()


async def test_a_caller_alone_gets_its_own_sync_at_once(gated: GatedSync) -> None:
    sync = LogSync(gated)
    waiter = asyncio.create_task(sync.synced())
    await gated.wait_started(1)
    assert not waiter.done()
    gated.gates[0].set()
    await waiter
    assert gated.started == 1
    sync.close()


async def test_a_commit_made_during_a_sync_waits_for_the_next_one(gated: GatedSync) -> None:
    sync = LogSync(gated)
    first = asyncio.create_task(sync.synced())
    await gated.wait_started(1)
    # Committed after the running fsync began: that fsync may not have covered it.
    later = [asyncio.create_task(sync.synced()) for _ in range(50)]
    await asyncio.sleep(0.01)
    gated.gates[0].set()
    await first
    await gated.wait_started(2)
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in later)
    gated.gates[1].set()
    await asyncio.gather(*later)
    # 51 commits, two fsyncs: the one running and one for everyone who came during it.
    assert gated.started == 2
    sync.close()


async def test_a_failed_sync_fails_its_callers_and_the_next_round_syncs_again(
    gated: GatedSync,
) -> None:
    sync = LogSync(gated)
    gated.fail_next = UnavailableError("EIO")
    failing = asyncio.create_task(sync.synced())
    await gated.wait_started(1)
    next_round = [asyncio.create_task(sync.synced()) for _ in range(3)]
    gated.gates[0].set()
    with pytest.raises(UnavailableError, match="EIO"):
        await failing
    await gated.wait_started(2)
    gated.gates[1].set()
    await asyncio.gather(*next_round)
    assert gated.started == 2
    sync.close()


async def test_a_caller_giving_up_does_not_cancel_the_others_sync(gated: GatedSync) -> None:
    sync = LogSync(gated)
    first = asyncio.create_task(sync.synced())
    await gated.wait_started(1)
    patient = asyncio.create_task(sync.synced())
    impatient = asyncio.create_task(sync.synced())
    await asyncio.sleep(0.01)
    impatient.cancel()
    gated.gates[0].set()
    await first
    await gated.wait_started(2)
    gated.gates[1].set()
    await patient
    assert impatient.cancelled()
    sync.close()
