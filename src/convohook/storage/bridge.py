"""Plain (synchronous) code run on the event loop, awaiting where it would block.

The use cases are plain functions of a `Transaction`, shared by the CLI, the API and the
workers, and by both backends. To run one on PostgreSQL without a thread, it runs in a
greenlet: where a statement would wait for the server, `await_only` hands the awaitable to
`run_bridged`, which awaits it on the loop (other tasks run meanwhile) and switches back
with the result. The same bridge SQLAlchemy's asyncio extension is built on; measured
against a thread per transaction in docs/performance.md.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import greenlet

P = ParamSpec("P")
R = TypeVar("R")


class _Bridged(greenlet.greenlet):
    """A greenlet started by `run_bridged`: its parent is awaiting on its behalf."""


class NotBridged(RuntimeError):
    """`await_only` called outside `run_bridged`: a programming error, not an outage."""


def bridged() -> bool:
    """Whether the current code runs under `run_bridged` (and so may call `await_only`)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def await_only(awaitable: Awaitable[R]) -> R:
    """Wait for `awaitable` on the event loop, from plain code run by `run_bridged`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise NotBridged("await_only() outside run_bridged(): nobody would await this")
    parent = current.parent
    assert parent is not None
    result: R = parent.switch(awaitable)
    return result


async def run_bridged(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` on the loop, awaiting what it hands to `await_only`. An
    exception (a cancellation included) raised by what it awaits is raised inside `fn`, at
    the `await_only`, so its `with` blocks unwind as they would in a thread."""
    runner = _Bridged(fn, greenlet.getcurrent())
    step: Any = runner.switch(*args, **kwargs)
    while not runner.dead:
        try:
            value = await step
        except BaseException:
            step = runner.throw(*sys.exc_info())
        else:
            step = runner.switch(value)
    result: R = step
    return result
