"""Scale-out on PostgreSQL (issue 3): 2 `serve --no-worker` + 3 `worker` processes on one database.

2,000 DMs from 1,000 new customers, with duplicates and out of order, spread over both API
processes: exactly 1,000 openings are delivered, none lost. Then the same with one worker killed
(SIGKILL) mid-run: still every opening delivered, repeats only as re-sends with the same
`webhook-id`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
from convohook.meta import notifications as n

from harness import Api, Meta, Receiver, free_socket, run_receiver, serve_asgi, wait_healthy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONVOHOOK = Path(sys.executable).parent / "convohook"
SECRET = "scale-app-secret"
ACCOUNT = "17841499999999999"
CUSTOMERS = 1_000
T0 = 1_760_000_000_000


def igsid(i: int) -> str:
    return f"55{i:014d}"


@contextmanager
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CONVOHOOK), *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def dm_notifications() -> list[bytes]:
    """Two messages per customer, some batched; every notification also sent again; shuffled."""
    bodies = []
    for i in range(CUSTOMERS):
        first = n.text_message(igsid(i), ACCOUNT, f"mid-{i}-a", T0 + i, "hello")
        second = n.text_message(igsid(i), ACCOUNT, f"mid-{i}-b", T0 + i + 1, "still there?")
        if i % 10 == 0:  # batched: both items in one notification
            bodies.append(n.encode(n.notification([n.entry(ACCOUNT, [first, second])])))
        else:
            bodies.append(n.encode(n.notification([n.entry(ACCOUNT, [first])])))
            bodies.append(n.encode(n.notification([n.entry(ACCOUNT, [second])])))
    rng = random.Random(20261125)
    bodies += rng.sample(bodies, len(bodies) // 10)  # Meta redelivers
    rng.shuffle(bodies)  # out of order
    return bodies


@asynccontextmanager
async def cluster(
    tmp_path: Path, database_url: str, graph_url: str
) -> AsyncIterator[tuple[list[str], list[subprocess.Popen[bytes]], dict[str, str]]]:
    env = {
        **os.environ,
        "CONVOHOOK_DATABASE_URL": database_url,
        "CONVOHOOK_META_APP_SECRET": SECRET,
        "CONVOHOOK_GRAPH_API_URL": graph_url,
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS": "1",
        "CONVOHOOK_DELIVERY_TIMEOUT": "2",  # lease = 2 x timeout + 5 s: a dead worker's claims
    }
    with processes(tmp_path) as procs:
        apis = []
        for k in range(2):
            sock = free_socket()
            port = sock.getsockname()[1]
            sock.close()
            log = tmp_path / f"serve{k}.log"
            procs.append(spawn(["serve", "--no-worker", "--port", str(port)], env, log))
            apis.append(f"http://127.0.0.1:{port}")
            await wait_healthy(apis[-1], procs[-1], log)
        workers = [spawn(["worker"], env, tmp_path / f"worker{k}.log") for k in range(3)]
        procs.extend(workers)
        yield apis, workers, env


async def run_scenario(
    tmp_path: Path, database_url: str, *, kill_a_worker: bool
) -> tuple[Receiver, str]:
    registry = ProfileRegistry()
    for i in range(CUSTOMERS):
        registry.put(igsid(i), f"user{i}", f"User {i}")
    async with (
        serve_asgi(create_graph_standin(registry), free_socket()) as graph,
        run_receiver(Receiver()) as receiver,
        cluster(tmp_path, database_url, f"{graph}/v24.0") as (apis, workers, env),
    ):
        created = subprocess.run(
            [str(CONVOHOOK), "orgs", "create", "--name", "Scale"],
            env=env,
            capture_output=True,
            check=True,
            timeout=60,
        )
        api = Api(apis[0], json.loads(created.stdout)["api_key"])
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": "scale_shop",
                "account_id": ACCOUNT,
                "access_token": "tok",
            },
        )
        webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {
                "name": "all",
                "url": receiver.url,
                "channel_type": "INSTAGRAM",
                "channel_ids": [channel["id"]],
                "events": ["conversation.opened"],
            },
        )

        bodies = dm_notifications()
        metas = [Meta(url, SECRET) for url in apis]
        sem = asyncio.Semaphore(32)
        sent = 0

        async def post(k: int, body: bytes) -> None:
            nonlocal sent
            async with sem:
                assert await metas[k % 2].post(body) == 200
            sent += 1
            if kill_a_worker and sent == len(bodies) // 3:
                workers[0].send_signal(signal.SIGKILL)

        await asyncio.gather(*(post(k, b) for k, b in enumerate(bodies)))

        async def all_customers_delivered() -> None:
            while len({r.json()["from"] for r in receiver.received}) < CUSTOMERS:
                await asyncio.sleep(0.2)

        async with asyncio.timeout(120):
            await all_customers_delivered()
        await asyncio.sleep(1.0)  # anything extra would arrive now
        if kill_a_worker:
            assert workers[0].wait(timeout=5) == -signal.SIGKILL
        assert all(w.poll() is None for w in workers[1:])  # the others stayed up throughout
        return receiver, webhook["secret"]


def check_exactly_once(receiver: Receiver, secret: str) -> None:
    verifier = StandardWebhook(secret)
    by_customer: dict[str, set[str]] = {}
    for received in receiver.received:
        body = verifier.verify(received.body, received.headers)
        assert body["conversationOpened"] is True
        by_customer.setdefault(body["from"], set()).add(received.headers["webhook-id"])
    assert set(by_customer) == {f"user{i}" for i in range(CUSTOMERS)}
    # One opening per customer: repeats, if any, are re-sends of the same delivery.
    assert all(len(ids) == 1 for ids in by_customer.values())


async def test_two_api_processes_three_workers_deliver_every_opening_once(
    tmp_path: Path, postgres_url: str
) -> None:
    receiver, secret = await run_scenario(tmp_path, postgres_url, kill_a_worker=False)
    check_exactly_once(receiver, secret)
    assert len(receiver.received) == CUSTOMERS


async def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path, postgres_url: str) -> None:
    receiver, secret = await run_scenario(tmp_path, postgres_url, kill_a_worker=True)
    check_exactly_once(receiver, secret)
