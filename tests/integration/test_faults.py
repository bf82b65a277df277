"""The database failing under the inbound path (issue 7): Meta gets a 503 and posts again, so
nothing is lost; nothing half-written is left behind; the opening is delivered once."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook as StandardWebhook

from convohook.delivery.retry import DEFAULT_SCHEDULE
from convohook.domain.payload import iso_ms
from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import (
    Api,
    Meta,
    Received,
    Receiver,
    Running,
    admin_execute,
    connect_channel,
    run_receiver,
    running_convohook,
)

pytestmark = pytest.mark.slow

SECRET = "faults-app-secret"
ACCOUNT = "17841433333333333"


async def connect(
    run: Running, receiver_url: str, igsid: str, username: str
) -> tuple[Api, Any, bytes]:
    """An org, a channel and a webhook to `receiver_url`; a customer the Graph API knows; the
    notification of their first DM."""
    api, _, webhook = await connect_channel(run, ACCOUNT, "faults_shop", receiver_url)
    run.graph.put(igsid, username, username.replace(".", " ").title())
    item = n.text_message(igsid, ACCOUNT, f"m.{igsid}", 1_700_000_000_000, "hi")
    return api, webhook, n.encode(n.notification([n.entry(ACCOUNT, [item])]))


async def test_a_locked_database_answers_503_and_meta_s_retry_opens_once(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    async with running_convohook(f"sqlite:///{db_path}", SECRET) as run:
        api, webhook, body = await connect(run, run.receiver.url, "4242", "locked.customer")
        meta = Meta(run.base, SECRET)

        # Another process holds SQLite's write lock longer than convohook's busy timeout (5 s).
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            assert await meta.post(body) == 503  # not stored: Meta keeps it and posts again
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert await meta.post(body) == 200
        [delivery] = await run.receiver.wait_for(1, timeout=20)
        await asyncio.sleep(1.0)  # a second opening would arrive now
        assert len(run.receiver.received) == 1
        [verified] = run.receiver.verify_all(webhook["secret"])
        assert verified["from"] == "locked.customer"
        assert delivery.json()["conversationOpened"] is True
        status, conversations = await api.call("GET", "/api/v1/conversations")
        assert status == 200
        assert len(conversations["items"]) == 1


@dataclass
class ThrottlingReceiver(Receiver):
    """Answers 429 with `Retry-After: 2` the first time, then 200; notes when each came."""

    arrivals: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        response = await super().handle(request)
        if len(self.arrivals) == 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "2"})
        return response


async def test_a_429_with_retry_after_is_honoured_then_delivered_once(tmp_path: Path) -> None:
    receiver = ThrottlingReceiver()
    async with (
        run_receiver(receiver),
        running_convohook(
            f"sqlite:///{tmp_path / 'throttled.db'}",
            SECRET,
            retry_schedule=(0.2, 0.2, 0.2),  # much sooner than the receiver asked
            retry_min_delay_after_throttle=0.5,
        ) as run,
    ):
        _, webhook, body = await connect(run, receiver.url, "4343", "throttled.customer")
        assert await Meta(run.base, SECRET).post(body) == 200
        await receiver.wait_for(2, timeout=20)
        await asyncio.sleep(1.0)  # nothing more is coming

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same delivery
    receiver.verify_all(webhook["secret"])
    # It waited as asked (2 s), not the schedule's 0.2 s; a busy machine only makes it later.
    assert receiver.arrivals[1] - receiver.arrivals[0] >= 1.9
    assert len(receiver.received) == 2


def _big_notification(first_igsid: str, items: int) -> bytes:
    """One notification with `items` DMs from as many new customers: tens of kilobytes, more
    than the free space left in any page of a fresh database."""
    messaging = [
        n.text_message(f"{first_igsid}{i}", ACCOUNT, f"m.big.{i}", 1_700_000_000_000, "x" * 200)
        for i in range(items)
    ]
    return n.encode(n.notification([n.entry(ACCOUNT, messaging)]))


async def _sqlite_pragma(run: Running, pragma: str) -> Any:
    """A per-connection PRAGMA on convohook's own connection."""
    return await run.services.db.read(lambda tx: tx._x(f"PRAGMA {pragma}").fetchone())


async def _quarantined(run: Running) -> int:
    """Notifications the processor set aside as poison: an outage must never put one there."""
    sql = "SELECT COUNT(*) FROM notifications WHERE status <> 'processed'"
    [count] = await run.services.db.read(lambda tx: tx._x(sql).fetchone())
    return int(count)


async def test_a_full_disk_answers_503_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    async with running_convohook(f"sqlite:///{tmp_path / 'full.db'}", SECRET) as run:
        _, webhook, body = await connect(run, run.receiver.url, "5151", "full.customer")
        meta = Meta(run.base, SECRET)
        big = _big_notification("5252", 40)

        # SQLite's own limit on the file's size fails writes exactly as a full disk does
        # (SQLITE_FULL, "database or disk is full").
        [pages] = await _sqlite_pragma(run, "page_count")
        await _sqlite_pragma(run, f"max_page_count = {pages}")
        assert await meta.post(big) == 503
        await asyncio.sleep(0.5)  # whatever the workers would do with it, they do now
        assert run.receiver.received == []

        await _sqlite_pragma(run, "max_page_count = 1073741823")  # space freed
        assert await meta.post(big) == 200
        assert await meta.post(body) == 200
        await run.receiver.wait_for(41, timeout=30)
        await asyncio.sleep(1.0)  # a second opening of any would arrive now
        assert len(run.receiver.received) == 41
        run.receiver.verify_all(webhook["secret"])
        assert await _quarantined(run) == 0


async def _set_read_only(run: Running, database_url: str, read_only: bool) -> None:
    """The database turned read-only under convohook and back: a SQLite file it may no longer
    write; on PostgreSQL, a failover to a server that takes no writes (every new session
    read-only, convohook's connections cut so that its pool reconnects to it)."""
    if database_url.startswith("sqlite:"):
        await _sqlite_pragma(run, f"query_only = {int(read_only)}")
        return
    name = database_url.rsplit("/", 1)[1]
    setting = "SET default_transaction_read_only = on" if read_only else "RESET ALL"
    admin_execute(
        f"ALTER DATABASE {name} {setting}",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


async def test_a_read_only_database_answers_503_and_nothing_acknowledged_is_lost(
    database_url_for: str,
) -> None:
    async with running_convohook(database_url_for, SECRET) as run:
        _, webhook, body = await connect(run, run.receiver.url, "6161", "readonly.customer")
        meta = Meta(run.base, SECRET)

        await _set_read_only(run, database_url_for, True)
        statuses = [await meta.post(body) for _ in range(3)]  # the first may meet a cut connection
        assert statuses == [503, 503, 503]
        await asyncio.sleep(1.0)  # the workers meet the read-only database too
        assert run.receiver.received == []

        await _set_read_only(run, database_url_for, False)
        deadline = time.monotonic() + 20
        while (status := await meta.post(body)) != 200:  # the pool reconnects within seconds
            assert status == 503
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await run.receiver.wait_for(1, timeout=20)
        await asyncio.sleep(1.0)  # a second opening would arrive now
        assert len(run.receiver.received) == 1
        [verified] = run.receiver.verify_all(webhook["secret"])
        assert verified["from"] == "readonly.customer"
        assert await _quarantined(run) == 0


def _failing_processing(
    monkeypatch: pytest.MonkeyPatch, *, poison: bytes | None = None, first_calls: int = 0
) -> list[int]:
    """Processing that raises a bug's exception: whenever a notification containing `poison`
    is in the batch, and for the first `first_calls` calls whatever the batch (a fault that
    passes). Returns the list of calls that raised, which grows."""
    from convohook.runtime.workers import processor
    from convohook.usecases.processing import process_pending as real

    raised: list[int] = []

    def process_pending(tx: Any, **kwargs: Any) -> Any:
        batch = tx.pending_notifications(kwargs["limit"])
        if len(raised) < first_calls or (
            poison is not None and any(poison in stored.body for stored in batch)
        ):
            raised.append(len(batch))
            raise RuntimeError("a bug in processing")
        return real(tx, **kwargs)

    monkeypatch.setattr(processor, "process_pending", process_pending)
    return raised


async def test_a_notification_that_always_fails_is_set_aside_and_the_rest_are_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_convohook(f"sqlite:///{tmp_path / 'poison.db'}", SECRET) as run:
        _, webhook, body = await connect(run, run.receiver.url, "7171", "good.customer")
        poison = n.encode(
            n.notification([n.entry(ACCOUNT, [n.text_message("7272", ACCOUNT, "m.p", 1, "☠")])])
        )
        raised = _failing_processing(monkeypatch, poison=b"m.p")
        meta = Meta(run.base, SECRET)
        assert await meta.post(poison) == 200  # stored before anything looks at it
        assert await meta.post(body) == 200

        [delivery] = await run.receiver.wait_for(1, timeout=30)
        assert delivery.json()["from"] == "good.customer"
        run.receiver.verify_all(webhook["secret"])
        # Tried in its batch, then alone three times, then set aside with why.
        assert raised[-3:] == [1, 1, 1]
        sql = "SELECT status, error FROM notifications WHERE status <> 'processed'"
        [(status, error)] = await run.services.db.read(lambda tx: tx._x(sql).fetchall())
        assert status == "failed"
        assert "a bug in processing" in error


async def test_a_fault_that_passes_sets_nothing_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_convohook(f"sqlite:///{tmp_path / 'passing.db'}", SECRET) as run:
        _, _, body = await connect(run, run.receiver.url, "7373", "lucky.customer")
        raised = _failing_processing(monkeypatch, first_calls=2)
        assert await Meta(run.base, SECRET).post(body) == 200

        [delivery] = await run.receiver.wait_for(1, timeout=30)
        assert delivery.json()["from"] == "lucky.customer"
        assert len(raised) == 2  # the batch, then alone once; the second try alone succeeded
        assert await _quarantined(run) == 0


@dataclass
class ManualClock:
    """convohook's time, moved by the test: days of a retry schedule in seconds of real time."""

    now_ms: int

    def __call__(self) -> int:
        return self.now_ms

    def advance_to(self, at_ms: int) -> None:
        self.now_ms = max(self.now_ms, at_ms)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _verify_at_its_time(secret: str, received: Received) -> None:
    """`standardwebhooks` verifies against the real clock, days behind convohook's here: check
    the signature with the library's own signing, at the timestamp sent."""
    headers = received.headers
    signed_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = StandardWebhook(secret).sign(
        headers["webhook-id"], signed_at, received.body.decode()
    )
    assert expected in headers["webhook-signature"].split(" ")


async def _deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/v1/webhooks/{webhook_id}/deliveries?limit=100")
    assert status == 200, body
    return list(body["items"])


async def _follow_the_schedule(
    run: Running, api: Api, clock: ManualClock, webhook_id: str, until_ms: int
) -> None:
    """Move the clock to each next attempt due before `until_ms`, and wait for it to be made."""
    while True:
        deliveries = await _deliveries(api, webhook_id)
        due = [
            d
            for d in deliveries
            if d["status"] == "pending" and _ms(d["next_attempt_at"]) <= until_ms
        ]
        webhook = await api.ok("GET", f"/api/v1/webhooks/{webhook_id}")
        if not due or not webhook["enabled"]:
            clock.advance_to(until_ms)
            return
        first = min(due, key=lambda d: _ms(d["next_attempt_at"]))
        clock.advance_to(_ms(first["next_attempt_at"]))
        run.services.signals.deliveries.notify()
        async with asyncio.timeout(10):
            while True:
                [now] = [d for d in await _deliveries(api, webhook_id) if d["id"] == first["id"]]
                if now["attempt_count"] > first["attempt_count"] and now["status"] != "sending":
                    break
                await asyncio.sleep(0.02)


async def _dm(run: Running, igsid: str, username: str) -> None:
    run.graph.put(igsid, username, username.title())
    item = n.text_message(igsid, ACCOUNT, f"m.{igsid}", run.services.clock(), "hello?")
    body = n.encode(n.notification([n.entry(ACCOUNT, [item])]))
    assert await Meta(run.base, SECRET).post(body) == 200


async def test_a_subscriber_down_for_six_days_gets_every_opening_once_it_is_back(
    tmp_path: Path,
) -> None:
    """Three openings on days 0, 2 and 4.1, each through the default schedule (5 s … 10 h,
    about 28 hours); the webhook disabled once failures span 5 days; a fourth opening on day
    6.1 waits for it; on day 6.5 the endpoint is fixed, re-enabled and recovered: every opening
    arrives once, the failed ones with the `webhook-id` of their failed attempts."""
    day = 86_400_000
    clock = ManualClock(int(time.time() * 1000))
    t0 = clock.now_ms
    receiver = Receiver(statuses=[503] * 1000)  # down
    async with (
        run_receiver(receiver),
        running_convohook(f"sqlite:///{tmp_path / 'outage.db'}", SECRET, clock=clock) as run,
    ):
        api, webhook, _ = await connect(run, receiver.url, "8000", "first.customer")
        hook, secret = webhook["id"], webhook["secret"]
        # Day 4.1: whatever the ±20% jitter, its 7th attempt comes before day 5 (at most 21.1 h
        # later) and its 8th, the last, after (at least 22.1 h later), which disables.
        for number, at_day in enumerate((0, 2, 4.1)):
            clock.advance_to(t0 + int(at_day * day))
            await _dm(run, f"810{number}", f"customer.{number}")
            async with asyncio.timeout(10):  # the opening, its profile, its first attempt
                while not any(
                    d["payload"] and d["payload"]["from"] == f"customer.{number}"
                    for d in await _deliveries(api, hook)
                    if d["attempt_count"] >= 1
                ):
                    await asyncio.sleep(0.02)
            await _follow_the_schedule(run, api, clock, hook, t0 + int((at_day + 2) * day))

        deliveries = {d["payload"]["from"]: d for d in await _deliveries(api, hook)}
        # Each ran the whole schedule: eight attempts over about 28 hours, then failed.
        for delivery in deliveries.values():
            assert delivery["status"] == "failed"
            assert delivery["attempt_count"] == 8
            times = sorted(_ms(a["attempted_at"]) for a in delivery["attempts"])
            gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
            for gap, scheduled in zip(gaps, DEFAULT_SCHEDULE, strict=True):
                assert scheduled * 0.8 <= gap <= scheduled * 1.2 + 1
        assert len(receiver.received) == 3 * 8
        # The third one's last attempt came more than 5 days after the first failure: disabled.
        disabled = await api.ok("GET", f"/api/v1/webhooks/{hook}")
        assert disabled["enabled"] is False
        assert "5 days" in disabled["disabled_reason"]
        assert disabled["queue_while_disabled"] is True  # the endpoint is down, not refusing
        failed_ids = {d["id"] for d in deliveries.values()}

        # Day 6.1: a customer writes while the webhook is disabled. The opening waits for it.
        await _dm(run, "8199", "customer.waiting")
        async with asyncio.timeout(10):
            while len(await _deliveries(api, hook)) < 4:
                await asyncio.sleep(0.02)
        [waiting] = [d for d in await _deliveries(api, hook) if d["id"] not in failed_ids]
        assert (waiting["status"], waiting["attempt_count"]) == ("pending", 0)
        assert len(receiver.received) == 3 * 8  # nothing sent to a disabled webhook

        # Day 6.5: the endpoint is fixed, the webhook re-enabled and what failed recovered.
        clock.advance_to(t0 + 6 * day + day // 2)
        receiver.statuses.clear()
        down = len(receiver.received)
        await api.ok("PATCH", f"/api/v1/webhooks/{hook}", {"enabled": True})
        status, recovered = await api.call(
            "POST", f"/api/v1/webhooks/{hook}/recover", {"since": iso_ms(t0)}
        )
        assert status == 202, recovered
        assert recovered["recovered"] == 3
        await receiver.wait_for(down + 4, timeout=20)
        await asyncio.sleep(1.0)  # a repeat would arrive now

    back = receiver.received[down:]
    assert len(back) == 4
    assert {r.headers["webhook-id"] for r in back} == failed_ids | {waiting["id"]}
    assert sorted(r.json()["from"] for r in back) == [
        "customer.0",
        "customer.1",
        "customer.2",
        "customer.waiting",
    ]
    for received in back:
        _verify_at_its_time(secret, received)


async def test_a_nul_character_in_a_dm_opens_the_conversation(database_url_for: str) -> None:
    """JSON may carry `\\u0000`, PostgreSQL text may not: the DM must open all the same."""
    async with running_convohook(database_url_for, SECRET) as run:
        _, webhook, _ = await connect(run, run.receiver.url, "9090", "nul.customer")
        item = n.text_message("9191", ACCOUNT, "m.nul", 1_700_000_000_000, "a\u0000b")
        run.graph.put("9191", "nul.sender", "Nul Sender")
        body = n.encode(n.notification([n.entry(ACCOUNT, [item])]))
        assert await Meta(run.base, SECRET).post(body) == 200
        [delivery] = await run.receiver.wait_for(1, timeout=20)
        assert delivery.json()["from"] == "nul.sender"
        run.receiver.verify_all(webhook["secret"])
        assert await _quarantined(run) == 0


async def test_a_nul_byte_sent_to_a_capture_bot_is_captured(database_url_for: str) -> None:
    async with running_convohook(database_url_for, SECRET) as run:
        org = await run.services.db.run(create_org, "Nul", run.services.clock())
        api = Api(run.base, org.api_key)
        bot = await api.ok("POST", "/api/v1/bots", {"name": "nul"})
        body = b'{"text": "a\\u0000b\x00"}'  # an escaped NUL and a raw one
        async with (
            aiohttp.ClientSession() as http,
            http.post(bot["webhook_url"], data=body) as answer,
        ):
            assert answer.status == 200, await answer.text()
        captures = await api.ok("GET", f"/api/v1/bots/{bot['id']}/captures")
        assert len(captures["items"]) == 1
