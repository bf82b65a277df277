"""Results recorded in batches: one transaction for whatever has finished meanwhile."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def next_batch(queue: asyncio.Queue[T], most: int) -> list[T]:
    """Wait for one item, then take what else is already waiting, up to `most` in all."""
    batch = [await queue.get()]
    while not queue.empty() and len(batch) < most:
        batch.append(queue.get_nowait())
    return batch
