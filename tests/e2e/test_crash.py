"""Crash tests (issue 7): `SIGKILL` at random moments under load, 20 times per backend.

Meta keeps posting DMs from new customers (some batched, some redelivered) and, as Meta does,
posts again whatever was not answered 200. Meanwhile a killer sends `SIGKILL` at random moments
(after 0.05 to 0.8 s of load) and restarts what it killed: on SQLite the one `convohook serve`; on
PostgreSQL one of `serve --no-worker` and two `convohook worker`s, in turn. Afterwards every
customer whose DM was acknowledged has exactly one Conversation Opened, delivered and verified
with the public `standardwebhooks` library; a repeat is only ever a re-send with the same
`webhook-id`; no customer Meta never got a 200 for is opened. The figures of each run go to
`$CONVOHOOK_RELIABILITY_LOG` (JSON lines) when set, for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
from convohook.meta import notifications as n
from convohook.meta.signature import sign_body

from harness import Api, Receiver, free_socket, run_receiver, serve_asgi, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONVOHOOK = Path(sys.executable).parent / "convohook"
SECRET = "crash-app-secret"
ACCOUNT = "17841477777777777"
KILLS = 20
SENDERS = 8  # notifications in flight, as Meta keeps several
T0 = 1_760_000_000_000
POST_TIMEOUT = aiohttp.ClientTimeout(total=5)


def igsid(i: int) -> str:
    return f"66{i:014d}"


@dataclass
class Process:
    """One `convohook` process the killer may kill and start again, same command, same port."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    health_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def log(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        self.proc = subprocess.Popen(
            [str(CONVOHOOK), *self.args],
            env=self.env,
            stdout=self.log().open("wb"),
            stderr=subprocess.STDOUT,
        )
        if self.health_url is not None:
            await wait_healthy(self.health_url, self.proc, self.log())

    def kill(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"{self.name} died by itself: see {self.log()}"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Load:
    """Meta's side: new customers' DMs, posted until answered 200."""

    url: str
    registry: ProfileRegistry
    rng: random.Random
    acknowledged: set[str] = field(default_factory=set)  # customers with an acknowledged DM
    # At most this many new customers (None: until stopped), and a pause after each
    # notification per sender, to spread a bounded load over the kills.
    max_customers: int | None = None
    pause_s: float = 0.0
    t0: int = T0  # the DMs' timestamps: T0 + customer (now, for a reply window still open)
    posts: int = 0
    refused: int = 0  # connection refused or reset, timed out, or a 5xx: posted again
    notifications: int = 0
    next_customer: int = 0
    redeliveries: list[bytes] = field(default_factory=list)

    def _new_notification(self) -> tuple[bytes, list[str]]:
        """One or two new customers (two in one notification now and then, as Meta batches),
        each with a first DM and, in one case in three, a second one in the same notification."""
        customers = []
        items = []
        for _ in range(2 if self.rng.random() < 0.2 else 1):
            i = self.next_customer
            self.next_customer += 1
            self.registry.put(igsid(i), f"crash_user{i}", f"Crash User {i}")
            customers.append(f"crash_user{i}")
            items.append(n.text_message(igsid(i), ACCOUNT, f"crash-{i}-a", self.t0 + i, "hello"))
            if self.rng.random() < 0.33:
                items.append(
                    n.text_message(igsid(i), ACCOUNT, f"crash-{i}-b", self.t0 + i + 1, "anyone?")
                )
        return n.encode(n.notification([n.entry(ACCOUNT, items)])), customers

    async def _post_until_acknowledged(self, http: aiohttp.ClientSession, body: bytes) -> None:
        signature = sign_body(SECRET, body)
        while True:
            self.posts += 1
            try:
                async with http.post(
                    f"{self.url}/webhooks/instagram",
                    data=body,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                ) as response:
                    await response.read()
                    if response.status == 200:
                        return
                    assert response.status >= 500, (response.status, await response.text())
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.refused += 1
            await asyncio.sleep(0.05)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=POST_TIMEOUT) as http:

            async def sender() -> None:
                while not stop.is_set() and (
                    self.max_customers is None or self.next_customer < self.max_customers
                ):
                    if self.redeliveries and self.rng.random() < 0.1:
                        # Meta delivers an acknowledged notification again now and then.
                        await self._post_until_acknowledged(http, self.redeliveries.pop())
                        continue
                    body, customers = self._new_notification()
                    await self._post_until_acknowledged(http, body)
                    self.notifications += 1
                    self.acknowledged.update(customers)
                    if self.rng.random() < 0.1:
                        self.redeliveries.append(body)
                    if self.pause_s:
                        await asyncio.sleep(self.pause_s)

            await asyncio.gather(*(sender() for _ in range(SENDERS)))


@contextmanager
def stopping(processes: list[Process]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def cluster(backend: str, database_url: str, graph_url: str, log_dir: Path) -> list[Process]:
    """SQLite: one `serve` with its workers. PostgreSQL: `serve --no-worker` + two workers.
    The first process is the one Meta posts to."""
    env = {
        **os.environ,
        "CONVOHOOK_DATABASE_URL": database_url,
        "CONVOHOOK_META_APP_SECRET": SECRET,
        "CONVOHOOK_GRAPH_API_URL": graph_url,
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS": "1",
        # Claims of a killed process run out soon: deliveries after 2 x 2 + 5 s, profile
        # lookups after 2 x 1 + 5 s.
        "CONVOHOOK_DELIVERY_TIMEOUT": "2",
        "CONVOHOOK_GRAPH_TIMEOUT": "1",
    }
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    if backend == "sqlite":
        return [Process("serve", ["serve", "--port", str(port)], env, log_dir, url)]
    return [
        Process("serve", ["serve", "--no-worker", "--port", str(port)], env, log_dir, url),
        Process("worker-a", ["worker"], env, log_dir),
        Process("worker-b", ["worker"], env, log_dir),
    ]


async def set_up(api: Api, receiver_url: str) -> str:
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": "crash_shop", "account_id": ACCOUNT, "access_token": "t"},
    )
    webhook = await api.ok(
        "POST",
        "/api/v1/webhooks",
        {
            "name": "crash",
            "url": receiver_url,
            "channel_type": "INSTAGRAM",
            "channel_ids": [channel["id"]],
            "events": ["conversation.opened"],
        },
    )
    return str(webhook["secret"])


async def kill_and_restart(
    processes: list[Process],
    rng: random.Random,
    *,
    kills: int = KILLS,
    longest_pause: float = 0.8,
) -> list[str]:
    """`kills` times: wait 0.05 to `longest_pause` s, `SIGKILL` the next process in turn and
    start it again (waiting until it serves, for `serve`). The names killed, in order."""
    killed = []
    for k in range(kills):
        await asyncio.sleep(rng.uniform(0.05, longest_pause))
        victim = processes[k % len(processes)]
        victim.kill()
        killed.append(victim.name)
        await victim.start()
    return killed


@asynccontextmanager
async def graph_standin(registry: ProfileRegistry) -> AsyncIterator[str]:
    async with serve_asgi(create_graph_standin(registry), free_socket()) as url:
        yield f"{url}/v24.0"


async def wait_for_customers(receiver: Receiver, customers: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while {r.json()["from"] for r in receiver.received} < customers:
        if time.monotonic() > deadline:
            missing = customers - {r.json()["from"] for r in receiver.received}
            raise AssertionError(f"{len(missing)} acknowledged customers never opened: {missing}")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_twenty_times_under_load_loses_and_doubles_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    rng = random.Random(f"crash-{backend}-{os.environ.get('CONVOHOOK_CRASH_SEED', '2026')}")
    registry = ProfileRegistry()
    async with graph_standin(registry) as graph_url, run_receiver(Receiver()) as receiver:
        processes = cluster(backend, database_url, graph_url, tmp_path)
        with stopping(processes):
            for process in processes:
                await process.start()
            created = subprocess.run(
                [str(CONVOHOOK), "orgs", "create", "--name", "Crash"],
                env=processes[0].env,
                capture_output=True,
                check=True,
                timeout=60,
            )
            api = Api(str(processes[0].health_url), json.loads(created.stdout)["api_key"])
            secret = await set_up(api, receiver.url)

            load = Load(str(processes[0].health_url), registry, rng)
            stop = asyncio.Event()
            load_task = asyncio.create_task(load.run(stop))
            started = time.monotonic()
            try:
                killed = await kill_and_restart(processes, rng)
            finally:
                stop.set()
                await load_task
            load_s = time.monotonic() - started
            await wait_for_customers(receiver, load.acknowledged, timeout=90)
            await asyncio.sleep(1.0)  # anything extra would arrive now

    verifier = StandardWebhook(secret)
    ids_by_customer: dict[str, set[str]] = {}
    for received in receiver.received:
        body = verifier.verify(received.body, received.headers)
        assert body["conversationOpened"] is True
        username = body["from"]
        assert body["customerName"] == "Crash User " + username.removeprefix("crash_user")
        ids_by_customer.setdefault(username, set()).add(received.headers["webhook-id"])
    # Exactly the acknowledged customers, once each: a repeat is the same delivery sent again.
    assert set(ids_by_customer) == load.acknowledged
    doubled = {c: ids for c, ids in ids_by_customer.items() if len(ids) > 1}
    assert not doubled, f"customers opened more than once: {doubled}"
    assert len(killed) == KILLS

    figures: dict[str, Any] = {
        "test": "sigkill",
        "backend": backend,
        "kills": len(killed),
        "killed": sorted(set(killed)),
        "load_s": round(load_s, 1),
        "notifications_acknowledged": load.notifications,
        "posts": load.posts,
        "posts_refused_and_retried": load.refused,
        "openings_expected": len(load.acknowledged),
        "openings_delivered": len(ids_by_customer),
        "deliveries_received": len(receiver.received),
        "resends_same_webhook_id": len(receiver.received) - len(ids_by_customer),
        "lost": 0,
        "doubled": 0,
    }
    print(json.dumps(figures))
    if log_path := os.environ.get("CONVOHOOK_RELIABILITY_LOG"):
        with open(log_path, "a") as log:
            log.write(json.dumps(figures) + "\n")
