"""Everything a running convohook needs, built once from `Settings` and passed explicitly."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from convohook.config import Settings
from convohook.outbound.graph_client import GraphClient, create_graph_session
from convohook.outbound.webhooks import create_session
from convohook.runtime.inbound_writer import InboundWriter
from convohook.runtime.metrics import Metrics
from convohook.runtime.signal import Broadcast, Signal
from convohook.storage.database import Database, open_database
from convohook.usecases.clock import Clock, system_clock


@dataclass(slots=True)
class Signals:
    notifications: Signal = field(default_factory=Signal)
    profiles: Signal = field(default_factory=Signal)
    deliveries: Signal = field(default_factory=Signal)
    replies: Signal = field(default_factory=Signal)  # the sender: replies queued
    bots: Signal = field(default_factory=Signal)  # the bot runner: runs decided
    webhooks_out: Signal = field(default_factory=Signal)  # deliveries claimed, about to go out
    captures: Broadcast = field(default_factory=Broadcast)  # Bot Studio's live view
    bot_runs: Broadcast = field(default_factory=Broadcast)  # a bot's page: runs finished


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    signals: Signals
    delivery_session: aiohttp.ClientSession
    graph: GraphClient
    graph_session: aiohttp.ClientSession
    rng: random.Random
    metrics: Metrics = field(default_factory=Metrics)
    inbound: InboundWriter | None = None
    # Liveness for /readyz: when each worker loop last came round (monotonic seconds), and the
    # task running them, if this process runs them.
    beats: dict[str, float] = field(default_factory=dict)
    workers: asyncio.Task[None] | None = None

    def beat(self, loop: str) -> None:
        self.beats[loop] = time.monotonic()

    @property
    def exempt_origins(self) -> frozenset[str]:
        # Our own capture bots live at the public URL, which is often loopback: deliveries to
        # them are allowed even when private targets are not.
        return frozenset({origin_of(self.settings.public_url)})

    def __post_init__(self) -> None:
        if self.inbound is None:
            self.inbound = InboundWriter(self.db, self.clock)

    async def store_notification(self, body: bytes) -> None:
        assert self.inbound is not None
        await self.inbound.store(body)

    async def aclose(self) -> None:
        if self.inbound is not None:
            await self.inbound.aclose()
        await self.delivery_session.close()
        await self.graph_session.close()
        self.db.close()


async def build_services(
    settings: Settings, *, clock: Clock = system_clock, db: Database | None = None
) -> Services:
    """Open the database (migrating it) and the HTTP sessions. Call inside a running loop."""
    database = db or open_database(settings.database_url, settings.sealer())
    if db is None:
        database.storage.migrate()
    exempt = frozenset({origin_of(settings.public_url)})
    delivery_session = create_session(
        allow_private=settings.allow_private_targets,
        exempt_origins=exempt,
        allowed_networks=settings.allowed_target_networks,
        limit=settings.delivery_concurrency,
    )
    graph_session = create_graph_session()
    return Services(
        settings=settings,
        db=database,
        clock=clock,
        signals=Signals(),
        delivery_session=delivery_session,
        graph=GraphClient(graph_session, settings.graph_api_url, timeout=settings.graph_timeout),
        graph_session=graph_session,
        rng=random.Random(),
    )
