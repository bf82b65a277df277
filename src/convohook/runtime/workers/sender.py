"""The sender: replies to customers through Instagram's Send API, at most once.

Each reply is claimed (`sending`, under a lease) in a durable commit before its call is made,
so that whatever happens next, nobody sends it again by itself: the answer is recorded (sent,
queued again after a refusal that proves it was not delivered, failed), or, if this process
dies first, the lease runs out and the next claim turns it `unknown` for a person to decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from convohook.domain.model import DueReply
from convohook.domain.replies import send_body
from convohook.meta.send import Unknown
from convohook.runtime.services import Services
from convohook.runtime.workers.batching import next_batch
from convohook.storage.errors import StorageError
from convohook.usecases.replies import (
    SentReply,
    claim_replies,
    next_reply_due_at,
    record_replies,
)

log = logging.getLogger(__name__)

CLAIM_BATCH = 50
# Replies in flight at once, per process: a business's replies are few, and Meta rate-limits
# per account anyway.
CONCURRENCY = 16


class Sender:
    def __init__(self, services: Services) -> None:
        self.s = services
        self._results: asyncio.Queue[SentReply] = asyncio.Queue()
        self._in_flight = 0
        self._slot_free = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._drained = False

    @property
    def lease_ms(self) -> int:
        # Past the call's own timeout and the time to record its answer: a claim that outlives
        # this is a worker that died, never one still waiting for Meta.
        return int((2 * self.s.settings.graph_timeout + 10) * 1000)

    async def _send(self, due: DueReply) -> None:
        try:
            try:
                outcome = await self.s.graph.send_message(
                    due.account_id,
                    due.access_token,
                    send_body(due.recipient_igsid, due.text, human_agent=due.human_agent),
                )
            except Exception as exc:
                # send_message never raises by design; if it does anyway, the request may
                # have gone out.
                log.exception("sender: sending %s failed unexpectedly", due.id)
                outcome = Unknown(f"internal error while sending: {exc!r}")
            await self._results.put(SentReply(due, outcome))
        finally:
            self._in_flight -= 1
            self._slot_free.set()

    async def _record_forever(self) -> None:
        s = self.s
        while True:
            batch = await next_batch(self._results, 200)
            while True:
                try:
                    # Relaxed: a record lost to a power cut leaves the reply `sending`, which
                    # becomes `unknown`, never sent twice.
                    await s.db.relaxed.run_retrying(
                        record_replies,
                        batch,
                        now_ms=s.clock(),
                        schedule=s.settings.retry_schedule,
                        rng=s.rng,
                    )
                    break
                except StorageError as exc:
                    log.error("sender: could not record answers, retrying: %s", exc)
                    await asyncio.sleep(1)
            s.signals.replies.notify()

    async def claim_and_send(self) -> int:
        s = self.s
        now = s.clock()
        wanted = min(CONCURRENCY - self._in_flight, CLAIM_BATCH)
        # Durable: the claim is what keeps the reply from being sent twice after a crash.
        due, expired = await s.db.run_retrying(claim_replies, now, now + self.lease_ms, wanted)
        if expired:
            log.warning(
                "sender: %d replies became unknown (their sender stopped mid-call)", expired
            )
        self._drained = len(due) < wanted
        for item in due:
            self._in_flight += 1
            task = asyncio.create_task(self._send(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _idle_wait(self) -> None:
        s = self.s
        next_at = await s.db.read(next_reply_due_at)
        await s.signals.replies.wait_until(next_at, s.clock(), s.settings.idle_poll_seconds)

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_forever())
        try:
            while True:
                self.s.beat("sender")
                if self._in_flight >= CONCURRENCY:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                try:
                    claimed = await self.claim_and_send()
                    if claimed == 0 or self._drained:
                        await self._idle_wait()
                except StorageError as exc:
                    log.error("sender: database unavailable, retrying in 1 s: %s", exc)
                    await asyncio.sleep(1)
        finally:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._drain()

    async def _drain(self) -> None:
        """On shutdown (a deploy, Ctrl-C), let the calls in flight finish, bounded by their own
        timeout, and record their answers: otherwise each would become `unknown`, for a person
        to sort out, although Meta answered."""
        s = self.s
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=s.settings.graph_timeout + 1)
        batch = []
        while not self._results.empty():
            batch.append(self._results.get_nowait())
        if not batch:
            return
        try:
            await s.db.run_retrying(
                record_replies,
                batch,
                now_ms=s.clock(),
                schedule=s.settings.retry_schedule,
                rng=s.rng,
            )
        except StorageError as exc:
            log.error("sender: could not record %d answers at shutdown: %s", len(batch), exc)
