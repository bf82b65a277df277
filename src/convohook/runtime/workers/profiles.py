"""The profile enricher: customers' Instagram profiles looked up for the events waiting on
them, with bounded retries; then the events are ready to send."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from convohook.domain.model import AwaitingProfile
from convohook.meta.graph import ProfileUnavailable
from convohook.runtime.services import Services
from convohook.runtime.workers.dispatcher import Dispatcher, delivery_lease_ms
from convohook.storage.base import Transaction
from convohook.storage.errors import StorageError
from convohook.usecases.delivery import ready_and_claimed
from convohook.usecases.profiles import (
    ProfileResult,
    apply_profile_results,
    claim_awaiting_profiles,
)

log = logging.getLogger(__name__)


def _contact_context(waiting: AwaitingProfile) -> dict[str, str]:
    contact = waiting.contact
    return {"org_id": contact.org_id, "channel_id": contact.channel_id, "contact_id": contact.id}


def profile_lease_ms(services: Services) -> int:
    """How long a profile lookup is claimed: long enough for the lookup and its recording."""
    return int((services.settings.graph_timeout * 2 + 5) * 1000)


class ProfileEnricher:
    RETRY_POLL_S = 1.0  # postponed lookups are due within seconds; no other process wakes us
    BATCH = 256
    # Lookups handed over and not yet recorded, beyond which the processor waits: a few
    # rounds of the Graph API's connection pool, far below what the lease allows for.
    MAX_HANDED = 1024
    # How long the first answer of a handoff waits for the others before what has come is
    # recorded: a handoff's lookups start together and, unless one is slow, answer within a
    # few ms. Long enough that a backlog's handoff (2,000 lookups answering over ~0.5 s) is
    # still one or two transactions: recorded in 100 ms windows, its smaller claims competed
    # with the other processes' and cost 8% more CPU per opening with four serves on two
    # cores (docs/performance.md). Far shorter than the Graph API's timeout (5 s), which a
    # slow lookup held the others back by.
    RECORD_WAIT_S = 0.5

    def __init__(self, services: Services, *, dispatcher: Dispatcher | None = None) -> None:
        """`dispatcher`: this process's, handed what the lookups make ready, claimed in the
        transaction that records them (instead of woken to claim them in one of its own)."""
        self.s = services
        self.dispatcher = dispatcher
        self._tasks: set[asyncio.Task[None]] = set()
        self.handed = 0
        self._room = asyncio.Event()
        self._room.set()

    def take(self, waiting: list[AwaitingProfile], *, wake_bots: bool = True) -> None:
        """Look up profiles already claimed by this process (the processor's handoff).
        `wake_bots`: the batch that claimed them scheduled bots' runs, which wait for the
        profiles; without any, waking the bot runner only had it look for runs and find none."""
        task = asyncio.create_task(self._complete(waiting, wake_bots))
        self._tasks.add(task)
        self._handed(len(waiting))
        task.add_done_callback(self._tasks.discard)

    async def cancel_handed(self) -> None:
        """On shutdown: their claims run out and whoever runs next looks them up."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def room(self) -> None:
        """Return once fewer than `MAX_HANDED` handed-over lookups are in flight."""
        await self._room.wait()

    def _handed(self, change: int) -> None:
        self.handed += change
        if self.handed >= self.MAX_HANDED:
            self._room.clear()
        else:
            self._room.set()

    async def _complete(self, waiting: list[AwaitingProfile], wake_bots: bool) -> None:
        """Look the profiles up, and record them as they come in: what has come in once the
        first answer has waited `RECORD_WAIT_S` for the others (or all of them), in one
        transaction. So a slow lookup holds back only itself, not the webhooks of the others
        handed over with it (they waited for the slowest, up to the Graph API's timeout); and
        a large handoff (a backlog processed at once: 2,000 lookups from 200 notifications of
        10 DMs) goes out as it is looked up, and gives the processor room (`room`) as it goes.
        At a steady rate, a handoff's few lookups answer within a millisecond or two of each
        other: one transaction, as before."""
        s = self.s
        answers: asyncio.Queue[ProfileResult] = asyncio.Queue()

        async def look_up(waiting: AwaitingProfile) -> None:
            answers.put_nowait(await self._lookup(waiting))

        lookups = [asyncio.create_task(look_up(w)) for w in waiting]
        left = len(waiting)
        try:
            while left:
                chunk = await self._answered(answers, left)
                ready = await self._record(chunk)
                left -= len(chunk)
                self._handed(-len(chunk))
                if ready and wake_bots:
                    s.signals.bots.notify()
        except Exception:
            # Their claims run out and the polling loop takes these over: late, never lost.
            log.exception("profiles: handing over %d lookups failed", left)
        finally:
            for task in lookups:
                task.cancel()
            self._handed(-left)

    async def _answered(
        self, answers: asyncio.Queue[ProfileResult], most: int
    ) -> list[ProfileResult]:
        """The next answer, and those that come in within `RECORD_WAIT_S` of it, up to `most`."""
        chunk = [await answers.get()]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.RECORD_WAIT_S):
                while len(chunk) < most:
                    chunk.append(await answers.get())
        return chunk

    async def _record(self, results: list[ProfileResult]) -> int:
        """Record the lookups; the deliveries they make ready go to the dispatcher, claimed in
        the same transaction while it has room (or it is woken to claim them). Returns how
        many events became ready."""
        s = self.s
        now = s.clock()
        dispatcher = self.dispatcher
        limit = dispatcher.claim_limit() if dispatcher is not None else 0

        def record(tx: Transaction) -> int:
            return apply_profile_results(tx, results, now)

        if dispatcher is None or limit <= 0:
            ready = await s.db.relaxed.run_retrying(record)
            if ready:
                s.signals.deliveries.notify()
            return ready
        # Durable, as the dispatcher's own claim: what the webhooks about to go stand on.
        ready, claimed = await s.db.run_retrying(
            ready_and_claimed,
            record,
            now_ms=now,
            lease_until_ms=now + delivery_lease_ms(s),
            limit=limit,
        )
        if claimed is not None:
            await dispatcher.take(claimed.get(), now)
        return ready

    async def _lookup(self, waiting: AwaitingProfile) -> ProfileResult:
        try:
            profile = await self.s.graph.fetch_profile(waiting.contact.igsid, waiting.access_token)
        except ProfileUnavailable as exc:
            log.warning(
                "profile of %s unavailable (%s)%s",
                waiting.contact.igsid,
                exc.reason,
                ", will retry" if exc.retryable else "",
                extra=_contact_context(waiting),
            )
            return ProfileResult(waiting, None, retryable=exc.retryable, error=exc.reason)
        except Exception as exc:  # one odd answer must not fail the other lookups of the batch
            log.exception(
                "profile lookup of %s failed unexpectedly",
                waiting.contact.igsid,
                extra=_contact_context(waiting),
            )
            return ProfileResult(waiting, None, retryable=True, error=repr(exc))
        return ProfileResult(waiting, profile)

    async def run_once(self) -> int:
        s = self.s
        now = s.clock()
        lease_ms = profile_lease_ms(s)
        waiting = await s.db.relaxed.run(claim_awaiting_profiles, now, now + lease_ms, self.BATCH)
        if not waiting:
            return 0
        results = await asyncio.gather(*(self._lookup(w) for w in waiting))
        if await self._record(list(results)):
            s.signals.bots.notify()  # bots' runs wait for the customer's profile
        return len(waiting)

    async def run(self) -> None:
        while True:
            self.s.beat("profiles")
            try:
                handled = await self.run_once()
            except StorageError as exc:
                log.error("profiles: database unavailable, retrying in 1 s: %s", exc)
                await asyncio.sleep(1)
                continue
            except Exception:
                log.exception("profiles: unexpected error, retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if handled < self.BATCH:  # drained: asking again now would find nothing
                await self.s.signals.profiles.wait(self.RETRY_POLL_S)
