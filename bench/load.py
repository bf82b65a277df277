"""Meta's side: signed notifications from brand-new customers, closed or open loop.

Every notification has one entry with `batch` messages, each from a customer writing for the
first time (`meta.notifications`, signed with `meta.signature`, as Meta does). They are built
and signed before the clock starts. Each POST records `time.monotonic_ns()` just before it is
sent (the time of every DM it carries) and how long until the answer was read (inbound latency).

Given several base URLs (N `serve` processes), notification k goes to the (k mod N)-th, round
robin, as a load balancer in front of them would spread Meta's POSTs.

- Closed loop: `concurrency` POSTs in flight, the next one sent as soon as one is answered: the
  most the target takes.
- Open loop: notifications start at fixed times, `batch / rate` seconds apart, whether or not
  earlier ones were answered: a fixed offered load of `rate` DMs/s, as Meta's traffic is. When
  the generator itself falls behind, how late each start was is recorded (lateness).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from convohook.meta import notifications as n
from convohook.meta.signature import sign_body

from common import ACCOUNT, APP_SECRET, customer_igsid

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
OPEN_LOOP_MAX_CONNECTIONS = 1024
_START_DELAY_NS = 20_000_000  # the open loop's first send: after the schedule is set up


@dataclass(frozen=True, slots=True)
class Notification:
    body: bytes
    signature: str
    first: int  # customer index of its first DM
    count: int  # DMs it carries: customers first … first + count - 1


def build(first: int, customers: int, batch: int) -> list[Notification]:
    """Notifications for customers first … first + customers - 1, `batch` per notification."""
    now_ms = int(time.time() * 1000)
    built = []
    for start in range(first, first + customers, batch):
        count = min(batch, first + customers - start)
        items = [
            n.text_message(customer_igsid(i), ACCOUNT, f"bench-{i}", now_ms, "hi")
            for i in range(start, start + count)
        ]
        body = n.encode(n.notification([n.entry(ACCOUNT, items)]))
        built.append(Notification(body, sign_body(APP_SECRET, body), start, count))
    return built


@dataclass
class LoadResult:
    """Per notification: when its POST started, how long it took, and how it ended."""

    started_ns: list[int]
    latency_ns: list[int]
    ok: list[bool]
    lateness_ns: list[int] = field(default_factory=list)  # open loop only
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first few, verbatim
    offered_rate: float | None = None

    @classmethod
    def empty(cls, size: int) -> LoadResult:
        return cls([0] * size, [0] * size, [False] * size)


class Meta:
    """POSTs notifications over one keep-alive pool, as Meta's senders do, round robin over
    `base_urls`."""

    def __init__(self, base_urls: Sequence[str], connections: int) -> None:
        self.urls = [f"{base}/webhooks/instagram" for base in base_urls]
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=REQUEST_TIMEOUT,
        )

    async def close(self) -> None:
        await self.session.close()

    async def post(self, notes: list[Notification], k: int, result: LoadResult) -> None:
        note = notes[k]
        url = self.urls[k % len(self.urls)]
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": note.signature}
        started = time.monotonic_ns()
        result.started_ns[k] = started
        try:
            async with self.session.post(url, data=note.body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.latency_ns[k] = time.monotonic_ns() - started
            result.statuses[type(exc).__name__] += 1
            if len(result.errors) < 5:
                result.errors.append(f"POST {url}: {type(exc).__name__}: {exc}")
            return
        result.latency_ns[k] = time.monotonic_ns() - started
        result.statuses[str(status)] += 1
        result.ok[k] = status == 200
        if status != 200 and len(result.errors) < 5:
            result.errors.append(f"POST {url} answered {status}")


async def closed_loop(
    base_urls: Sequence[str], notes: list[Notification], concurrency: int
) -> LoadResult:
    result = LoadResult.empty(len(notes))
    meta = Meta(base_urls, concurrency)
    cursor = iter(range(len(notes)))

    async def sender() -> None:
        for k in cursor:  # one shared iterator: each notification is taken once
            await meta.post(notes, k, result)

    try:
        await asyncio.gather(*(sender() for _ in range(concurrency)))
    finally:
        await meta.close()
    return result


async def open_loop(base_urls: Sequence[str], notes: list[Notification], rate: float) -> LoadResult:
    """Start notification k at t0 + k * (its DMs / rate) seconds, never waiting for answers."""
    result = LoadResult.empty(len(notes))
    result.lateness_ns = [0] * len(notes)
    meta = Meta(base_urls, OPEN_LOOP_MAX_CONNECTIONS)
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic_ns() + _START_DELAY_NS
    due = t0
    try:
        for k, note in enumerate(notes):
            wait = due - time.monotonic_ns()
            if wait > 0:
                await asyncio.sleep(wait / 1e9)
            else:
                await asyncio.sleep(0)  # behind: still let the POSTs in flight progress
            result.lateness_ns[k] = max(0, time.monotonic_ns() - due)
            tasks.append(asyncio.create_task(meta.post(notes, k, result)))
            due += int(note.count / rate * 1e9)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await meta.close()
    dms = sum(note.count for note in notes)
    span_s = (result.started_ns[-1] - result.started_ns[0]) / 1e9 if len(notes) > 1 else 0
    # DMs sent before the last start, over the time they took: the load actually offered.
    result.offered_rate = (dms - notes[-1].count) / span_s if span_s > 0 else None
    return result
