"""storage/bridge.py: plain code run on the loop, awaiting where it would block."""

from __future__ import annotations

import asyncio

import pytest

from convohook.storage.bridge import NotBridged, await_only, bridged, run_bridged


async def test_plain_code_awaits_on_the_loop_and_gets_the_results() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    def plain(a: int, *, b: int) -> list[int]:
        assert bridged()
        return [await_only(double(a)), await_only(double(b))]

    assert await run_bridged(plain, 1, b=5) == [2, 10]
    assert not bridged()


async def test_other_tasks_run_while_bridged_code_waits() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    def plain() -> str:
        order.append("plain waits")
        await_only(gate.wait())
        order.append("plain resumes")
        return "done"

    async def other() -> None:
        order.append("other runs")
        gate.set()

    result, _ = await asyncio.gather(run_bridged(plain), other())
    assert result == "done"
    assert order == ["plain waits", "other runs", "plain resumes"]


async def test_an_awaited_error_is_raised_at_the_await_and_unwinds_the_plain_code() -> None:
    unwound: list[str] = []

    async def fails() -> None:
        raise LookupError("from the server")

    def plain() -> None:
        try:
            await_only(fails())
        finally:
            unwound.append("finally ran")

    with pytest.raises(LookupError, match="from the server"):
        await run_bridged(plain)
    assert unwound == ["finally ran"]


async def test_a_caught_error_lets_the_plain_code_go_on() -> None:
    async def fails() -> None:
        raise ValueError("once")

    def plain() -> str:
        try:
            await_only(fails())
        except ValueError:
            return "recovered"
        return "not reached"

    assert await run_bridged(plain) == "recovered"


async def test_cancelling_the_task_unwinds_the_plain_code() -> None:
    unwound = asyncio.Event()
    started = asyncio.Event()

    def plain() -> None:
        try:
            started.set()
            await_only(asyncio.sleep(60))
        finally:
            unwound.set()

    task = asyncio.ensure_future(run_bridged(plain))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert unwound.is_set()


def test_await_only_outside_the_bridge_says_so() -> None:
    async def nothing() -> None:
        return None

    coroutine = nothing()
    with pytest.raises(NotBridged, match="outside run_bridged"):
        await_only(coroutine)
    coroutine.close()
