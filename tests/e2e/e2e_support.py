"""The end-to-end suite's machinery: the real `convohook` CLI in subprocesses, a subscriber that
verifies every delivery with the public `standardwebhooks` library, and Meta's side.

Nothing here imports the product's logic except what Meta itself would know how to do (signing a
body with the app secret, building Meta-shaped notifications): expected payloads are written out
from DESIGN section 3, so a change in the product's payload builder cannot hide behind the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook as StandardWebhook

from convohook.meta import notifications as n

from harness import Api, Meta, Received, Receiver, run_receiver

T = TypeVar("T")

CONVOHOOK = Path(sys.executable).parent / "convohook"
APP_SECRET = "e2e-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
GRAPH_VERSION = "v24.0"
RETRY_SCHEDULE = "0.3,0.3"  # so every retry of a test happens within a second
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "meta"
# The ids the fixtures use (tests/fixtures/meta/README.md); every test rewrites them to its own.
FIXTURE_ACCOUNTS = ("17841400000000001", "17841400000000002")
FIXTURE_CUSTOMERS = ("1234567890123456", "1234567890123457", "1234567890123458")
CUSTOMER_ID = re.compile(r"customer_[0-9A-Za-z]{10}")

STARTUP_TIMEOUT = 30.0
WAIT_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
POLL_S = 0.05

_serial = itertools.count(1)


# --- ids -------------------------------------------------------------------------------------


def new_igsid() -> str:
    """A 16-digit Instagram-scoped id no other test of the session uses."""
    return f"77{next(_serial):014d}"


def new_account_id() -> str:
    """A 17-digit Instagram professional account id no other test of the session uses."""
    return f"1784149{next(_serial):010d}"


def new_mid() -> str:
    return "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE2E" + secrets.token_urlsafe(18)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_to_ms(value: str) -> int:
    """The API's times (`2025-01-01T00:00:00.123Z`) as epoch milliseconds."""
    return round(datetime.fromisoformat(value).timestamp() * 1000)


# --- the DoubleTick payload, written out from DESIGN section 3 -------------------------------


def doubletick_body(*, handle: str, username: str, name: str, customer_id: str) -> bytes:
    """Conversation Opened as DoubleTick sends it: compact JSON, keys in this order, UTF-8."""
    fields = {
        "to": handle,
        "from": username,
        "handle": username,
        "contact": {"name": name},
        "channelType": "INSTAGRAM",
        "customerName": name,
        "dtCustomerId": customer_id,
        "channelHandle": handle,
        "customerPhone": username,
        "integrationType": "INSTAGRAM",
        "conversationOpened": True,
    }
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def header(received: Received, name: str) -> str:
    """A request header of a delivery, by case-insensitive name (HTTP header names are)."""
    found = [v for k, v in received.headers.items() if k.lower() == name.lower()]
    assert len(found) == 1, (name, received.headers)
    return found[0]


# --- polling ---------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = WAIT_TIMEOUT
) -> T:
    """Poll `check` until it returns something truthy, failing after `timeout` with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


# --- the CLI in subprocesses -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_env(**settings: str) -> dict[str, str]:
    """The environment of a CLI run: the caller's, minus any CONVOHOOK_* it may carry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOHOOK_")}
    # Plain, wide output: error messages are matched as text and must not be wrapped.
    env |= {"NO_COLOR": "1", "COLUMNS": "400", "TERM": "dumb"}
    return env | settings


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONVOHOOK), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"`convohook {' '.join(result.args[1:])}` exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


class Service:
    """A long-running `convohook` subprocess; stdout and stderr go to a log file."""

    started: list[Service] = []  # every one so far, so a failing test can show their logs

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(CONVOHOOK), *args], env=dict(env), stdout=self._log, stderr=subprocess.STDOUT
        )
        Service.started.append(self)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log(self, since: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def wait_until_serving(self, url: str, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"`convohook {self.name}` exited {self.process.returncode} while starting:\n"
                    f"{self.log()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"`convohook {self.name}` did not answer {url} within {timeout:g} s:\n"
                    f"{self.log()}"
                )
            time.sleep(POLL_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@dataclass(frozen=True)
class Deployment:
    """A running `convohook serve` (and its Graph API stand-in) with one organisation."""

    base_url: str
    graph_url: str  # with the version, as CONVOHOOK_GRAPH_API_URL
    env: dict[str, str]
    org_id: str
    api_key: str
    server: Service
    workdir: Path

    @property
    def standin_url(self) -> str:
        return self.graph_url.removesuffix(f"/{GRAPH_VERSION}")

    def api(self) -> Api:
        return Api(self.base_url, self.api_key)

    def meta(self) -> Meta:
        return Meta(self.base_url, APP_SECRET)

    def start_server(self, name: str) -> tuple[Service, str]:
        """Another `convohook serve`, with workers, on this deployment's database."""
        port = free_port()
        args = ["serve", "--port", str(port), "--retry-schedule", RETRY_SCHEDULE]
        server = Service(name, args, self.env, self.workdir / f"{name}.log")
        base_url = f"http://127.0.0.1:{port}"
        try:
            server.wait_until_serving(f"{base_url}/healthz")
        except BaseException:
            server.stop()
            raise
        return server, base_url

    def start_worker(self, name: str = "worker") -> Service:
        """`convohook worker` on this deployment's database (stopped by the caller)."""
        return Service(
            name,
            ["worker", "--retry-schedule", RETRY_SCHEDULE],
            self.env,
            self.workdir / f"{name}.log",
        )


@contextlib.contextmanager
def deploy(
    workdir: Path,
    *,
    allow_private_targets: bool = True,
    graph_url: str | None = None,
    workers: bool = True,
    database_url: str | None = None,
) -> Iterator[Deployment]:
    """Start `convohook serve` (and `convohook graph-standin` unless given a `graph_url`), then
    create an organisation with `convohook orgs create`. The database is a new SQLite file
    unless a `database_url` is given."""
    workdir.mkdir(parents=True, exist_ok=True)
    services: list[Service] = []
    try:
        standin: Service | None = None
        if graph_url is None:
            graph_port = free_port()
            graph_url = f"http://127.0.0.1:{graph_port}/{GRAPH_VERSION}"
            standin = Service(
                "graph-standin",
                ["graph-standin", "--port", str(graph_port)],
                cli_env(),
                workdir / "graph-standin.log",
            )
            services.append(standin)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        settings = {
            "CONVOHOOK_DATABASE_URL": database_url or f"sqlite:///{workdir / 'db.sqlite'}",
            "CONVOHOOK_META_APP_SECRET": APP_SECRET,
            "CONVOHOOK_META_VERIFY_TOKEN": VERIFY_TOKEN,
            "CONVOHOOK_GRAPH_API_URL": graph_url,
            "CONVOHOOK_PUBLIC_URL": base_url,
        }
        if allow_private_targets:
            settings["CONVOHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
        env = cli_env(**settings)
        # The schedule goes in as the flag: CONVOHOOK_RETRY_SCHEDULE in its documented
        # comma-separated form stops the server (see test_cli.py, strict xfail).
        args = ["serve", "--port", str(port), "--retry-schedule", RETRY_SCHEDULE]
        if not workers:
            args.append("--no-worker")
        server = Service("serve", args, env, workdir / "serve.log")
        services.append(server)
        # Both start at once; then wait for each.
        if standin is not None:
            standin.wait_until_serving(
                f"{graph_url.removesuffix('/' + GRAPH_VERSION)}/_standin/profiles"
            )
        server.wait_until_serving(f"{base_url}/healthz")
        created = run_cli("orgs", "create", "--name", "E2E Shop", env=env)
        assert created.returncode == 0, describe(created)
        org = json.loads(created.stdout)
        yield Deployment(base_url, graph_url, env, org["id"], org["api_key"], server, workdir)
    finally:
        for service in reversed(services):
            service.stop()


# --- the subscriber --------------------------------------------------------------------------


@dataclass
class VerifyingReceiver(Receiver):
    """A webhook endpoint that checks every request it gets with `standardwebhooks`, as any
    subscriber would; a request that does not verify is recorded as a failure."""

    secret: str | None = None
    failures: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp keeps it for the base class's read
        try:
            if self.secret is None:
                raise AssertionError("a delivery arrived before the webhook existed")
            StandardWebhook(self.secret).verify(body, dict(request.headers))
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc} (body {body[:200]!r})")
        return await super().handle(request)

    def verified(self) -> list[Received]:
        assert not self.failures, f"deliveries that did not verify: {self.failures}"
        return list(self.received)


# --- a test's own channel, webhook and customers ---------------------------------------------


@dataclass(frozen=True)
class Customer:
    igsid: str
    username: str
    name: str | None

    @property
    def display_name(self) -> str:
        return self.name or self.username


def load_fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return document


def rewrite_ids(document: Any, ids: Mapping[str, str]) -> Any:
    """A copy of `document` with every string equal to a key of `ids` replaced, and every `mid`
    made unique (consistently, so a read or reaction still names the message it refers to)."""
    suffix = secrets.token_hex(6)

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if key == "mid":
                return f"{value}{suffix}"
            return ids.get(value, value)
        return value

    return walk(document)


def strings_in(document: Any) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.add(value)

    walk(document)
    return found


@dataclass
class Stack:
    """One test's view of the shared deployment: its own channel (a new Instagram account), a
    webhook on it pointing at its own verifying receiver, and helpers to play customers."""

    deployment: Deployment
    api: Api
    meta: Meta
    receiver: VerifyingReceiver
    channel: dict[str, Any]
    webhook: dict[str, Any]
    channels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def account_id(self) -> str:
        return str(self.channel["account_id"])

    @property
    def handle(self) -> str:
        return str(self.channel["handle"])

    # setup ------------------------------------------------------------------------------------

    async def create_channel(self) -> dict[str, Any]:
        serial = next(_serial)
        channel: dict[str, Any] = await self.api.ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": f"e2e_shop_{serial}",
                "account_id": new_account_id(),
                "access_token": f"IGAA-e2e-token-{serial}",
            },
        )
        self.channels.append(channel)
        return channel

    async def new_customer(
        self, name: str | None = None, *, with_name: bool = True, register: bool = True
    ) -> Customer:
        """A customer who never wrote before, registered with the Graph API stand-in unless
        `register` is false; without `with_name` Instagram knows no display name for them.
        The default display name is not ASCII, to check the payload's bytes."""
        serial = next(_serial)
        if name is None and with_name:
            name = f"Zoë Ångström {serial}"
        customer = Customer(igsid=new_igsid(), username=f"e2e.customer{serial}", name=name)
        if register:
            await self.register_profile(customer)
        return customer

    async def register_profile(self, customer: Customer) -> None:
        profile = {"username": customer.username, "name": customer.name}
        await self.standin("PUT", f"profiles/{customer.igsid}", profile)

    async def standin(self, method: str, path: str, body: Any = None) -> Any:
        """Talk to the Graph API stand-in's admin endpoints (`/_standin/...`)."""
        url = f"{self.deployment.standin_url}/_standin/{path}"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.request(method, url, json=body) as answer,
        ):
            assert answer.status == 200, (answer.status, await answer.text())
            return await answer.json()

    async def profile_lookups(self, customer: Customer) -> int:
        served = await self.standin("GET", "requests")
        return int(served["by_igsid"].get(customer.igsid, 0))

    # playing Meta -----------------------------------------------------------------------------

    def text_notification(
        self,
        customer: Customer,
        *,
        text: str = "Hi! Is this still available?",
        mid: str | None = None,
        timestamp_ms: int | None = None,
    ) -> dict[str, Any]:
        item = n.text_message(
            customer.igsid,
            self.account_id,
            mid or new_mid(),
            now_ms() if timestamp_ms is None else timestamp_ms,
            text,
        )
        return n.notification([n.entry(self.account_id, [item])])

    async def post(self, body: dict[str, Any] | bytes, *, signature: str | None = None) -> int:
        return await self.meta.post(body, signature=signature)

    async def dm(
        self,
        customer: Customer,
        *,
        text: str = "Hi! Is this still available?",
        timestamp_ms: int | None = None,
    ) -> None:
        body = self.text_notification(customer, text=text, timestamp_ms=timestamp_ms)
        assert await self.post(body) == 200

    def fixture(
        self,
        name: str,
        customers: Customer | Mapping[str, Customer],
        accounts: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Fixture `name` with its customers replaced (one Customer: every fixture customer is
        that one), its accounts replaced (by default the first is this test's channel) and
        every mid made new. Fails if a fixture id would leak through unreplaced."""
        if isinstance(customers, Customer):
            customers = dict.fromkeys(FIXTURE_CUSTOMERS, customers)
        ids = {fixture_id: c.igsid for fixture_id, c in customers.items()}
        ids |= accounts if accounts is not None else {FIXTURE_ACCOUNTS[0]: self.account_id}
        document = rewrite_ids(load_fixture(name), ids)
        leaked = strings_in(document) & {*FIXTURE_ACCOUNTS, *FIXTURE_CUSTOMERS}
        assert not leaked, f"fixture {name} still names {leaked}"
        result: dict[str, Any] = document
        return result

    # what the subscriber got ------------------------------------------------------------------

    async def wait_for_deliveries(self, count: int) -> list[Received]:
        await eventually(
            self._have(lambda: len(self.receiver.received) >= count),
            f"{count} deliveries (have {len(self.receiver.received)})",
        )
        return self.receiver.verified()

    def deliveries_of(self, customer: Customer | str) -> list[Received]:
        username = customer if isinstance(customer, str) else customer.username
        return [r for r in self.receiver.verified() if r.json().get("from") == username]

    async def wait_for_deliveries_of(
        self, customer: Customer | str, count: int = 1
    ) -> list[Received]:
        await eventually(
            self._have(lambda: len(self.deliveries_of(customer)) >= count),
            f"{count} deliveries for {customer}",
        )
        return self.deliveries_of(customer)

    @staticmethod
    def _have(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return condition()

        return check

    async def assert_nothing_else_delivered(self, delivered: int) -> None:
        """Prove that nothing beyond the `delivered` deliveries so far is coming: a new customer
        writes, and once their opening arrives everything posted before it has been processed
        (a server process applies stored notifications in batches, in order, and writes each
        event with its deliveries in one transaction), so the delivery log's count is final.
        With several processes this only weakens the proof; it never fails a correct run."""
        marker = await self.new_customer("Marker Customer")
        await self.dm(marker)
        await self.wait_for_deliveries_of(marker)
        bodies = [r.json() for r in self.receiver.verified()]
        assert len(bodies) == delivered + 1, bodies
        logged = await self.delivery_log()
        assert len(logged) == delivered + 1, logged

    # the API ----------------------------------------------------------------------------------

    async def delivery_log(self) -> list[dict[str, Any]]:
        page = await self.api.ok("GET", f"/api/v1/webhooks/{self.webhook['id']}/deliveries")
        items: list[dict[str, Any]] = page["items"]
        return items

    async def conversations(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(
            f"{k}={v}" for k, v in {"channel_id": self.channel["id"], **filters}.items()
        )
        page = await self.api.ok("GET", f"/api/v1/conversations?{query}")
        assert page["next"] is None
        items: list[dict[str, Any]] = page["items"]
        return items

    async def contacts(self, handle: str, channel: dict[str, Any] | None = None) -> list[Any]:
        channel_id = (channel or self.channel)["id"]
        page = await self.api.ok("GET", f"/api/v1/contacts?handle={handle}&channel_id={channel_id}")
        items: list[Any] = page["items"]
        return items

    async def customer_id_of(self, username: str, channel: dict[str, Any] | None = None) -> str:
        found = await self.contacts(username, channel)
        assert len(found) == 1, found
        customer_id = str(found[0]["customer_id"])
        assert CUSTOMER_ID.fullmatch(customer_id), customer_id
        return customer_id

    async def expected_opening(
        self, customer: Customer, channel: dict[str, Any] | None = None
    ) -> bytes:
        """The exact body DoubleTick would send for `customer` on `channel`, with the
        dtCustomerId the contacts API reports for them."""
        channel = channel or self.channel
        return doubletick_body(
            handle=channel["handle"],
            username=customer.username,
            name=customer.display_name,
            customer_id=await self.customer_id_of(customer.username, channel),
        )

    async def assert_opened_once(
        self, customer: Customer, channel: dict[str, Any] | None = None
    ) -> Received:
        """Exactly one delivery for `customer` so far, and its body is the DoubleTick payload."""
        (delivery,) = await self.wait_for_deliveries_of(customer)
        assert delivery.body == await self.expected_opening(customer, channel)
        return delivery


@contextlib.asynccontextmanager
async def open_stack(deployment: Deployment) -> AsyncIterator[Stack]:
    """A new channel on `deployment`, and a webhook on it pointing at a new receiver."""
    api = deployment.api()
    receiver = VerifyingReceiver()
    async with run_receiver(receiver):
        stack = Stack(deployment, api, deployment.meta(), receiver, {}, {})
        stack.channel = await stack.create_channel()
        stack.webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {
                "name": "CRM",
                "url": receiver.url,
                "channel_type": "INSTAGRAM",
                "channel_ids": [stack.channel["id"]],
                "events": ["conversation.opened"],
            },
        )
        assert stack.webhook["secret"].startswith("whsec_")
        receiver.secret = stack.webhook["secret"]
        try:
            yield stack
        finally:
            # Deleting the webhook ends any retries still aimed at this receiver (the server
            # may be gone already when a test stopped it on purpose).
            with contextlib.suppress(aiohttp.ClientError):
                await api.call("DELETE", f"/api/v1/webhooks/{stack.webhook['id']}")
