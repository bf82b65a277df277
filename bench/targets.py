"""The systems under test, each in its own process: `convohook serve` and the bare relay.

convohook runs on a copy of a template database made once per history size: migrated, with the
org, the channel and a webhook to the sink (made through the CLI and the HTTP API, as a user
would) and the pre-populated history. Every measurement gets its own fresh copy (a file copy on
SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL), so no run inherits another's rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import bots as bot_studio
import orjson
import psycopg

from convohook.delivery.signing import generate_secret

import history
import procs
from common import (
    ACCESS_TOKEN,
    ACCOUNT,
    APP_SECRET,
    BENCH,
    CONVOHOOK,
    HANDLE,
    BenchError,
    free_port,
)
from sink_client import Sink

ADMIN_URL = os.environ.get(
    "CONVOHOOK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CLI_TIMEOUT_S = 120.0
HEALTHY_TIMEOUT_S = 20.0
API_TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class Running:
    """One target process, up and healthy."""

    kind: str  # "convohook" or "relay"
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    webhook_secret: str
    database_url: str | None = None
    # `--topology split`: the `convohook worker` beside `serve --no-worker`; scale-out: the
    # other `serve` processes on the same database
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # scale-out: the other `serve` processes' base URLs (Meta's POSTs go round robin)
    more_bases: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def bases(self) -> list[str]:
        """Every base URL that takes Meta's POSTs."""
        return [self.base, *self.more_bases]

    @property
    def pids(self) -> list[int]:
        """Every process of the target: its CPU and memory are theirs together."""
        return [self.proc.pid, *(helper.pid for helper in self.helpers)]


class Databases(Protocol):
    dialect: str

    def create(self, name: str) -> str: ...
    def clone(self, template_url: str, name: str) -> str: ...
    def drop(self, url: str) -> None: ...
    def backend_pids(self, url: str) -> list[int]: ...


@dataclass
class SQLiteDatabases:
    workdir: Path
    dialect: str = "sqlite"

    def create(self, name: str) -> str:
        return f"sqlite:///{self.workdir / (name + '.db')}"

    def clone(self, template_url: str, name: str) -> str:
        source = Path(template_url.removeprefix("sqlite:///"))
        target = self.workdir / (name + ".db")
        shutil.copyfile(source, target)
        wal = source.with_name(source.name + "-wal")
        if wal.exists():  # a template left unclean: its last commits live in the WAL
            shutil.copyfile(wal, target.with_name(target.name + "-wal"))
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    def backend_pids(self, url: str) -> list[int]:
        return []  # SQLite runs inside convohook


@dataclass
class PostgresDatabases:
    admin_url: str = ADMIN_URL
    dialect: str = "postgresql"
    prefix: str = field(default_factory=lambda: f"convohook_bench_{uuid.uuid4().hex[:8]}")
    created: list[str] = field(default_factory=list)

    def _admin(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise BenchError(
                f"cannot reach PostgreSQL at {self.admin_url} ({exc}); start it, or point "
                "CONVOHOOK_BENCH_POSTGRES_URL at a server where this user may CREATE DATABASE"
            ) from None

    def _url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def create(self, name: str) -> str:
        full = f"{self.prefix}_{name}"
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {full}")
        self.created.append(full)
        return self._url(full)

    def clone(self, template_url: str, name: str) -> str:
        full = f"{self.prefix}_{name}"
        template = template_url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f"CREATE DATABASE {full} TEMPLATE {template}")
        self.created.append(full)
        return self._url(full)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self._url(name))

    def backend_pids(self, url: str) -> list[int]:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        return [int(r[0]) for r in rows]


@dataclass(frozen=True)
class Template:
    url: str
    api_key: str
    webhook_secret: str
    history: dict[str, Any]
    bot_ids: tuple[str, ...] = ()


def serve_env(database_url: str, sink: Sink) -> dict[str, str]:
    return {
        **os.environ,
        "CONVOHOOK_DATABASE_URL": database_url,
        "CONVOHOOK_META_APP_SECRET": APP_SECRET,
        "CONVOHOOK_GRAPH_API_URL": sink.graph_api_url,
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS": "1",
    }


def _cli(args: list[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(
            [str(CONVOHOOK), *args],
            env=env,
            capture_output=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"`convohook {' '.join(args)}` failed: {exc}") from None
    if done.returncode != 0:
        raise BenchError(
            f"`convohook {' '.join(args)}` exited with {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')[-2000:]}"
        )
    return done.stdout.decode()


async def _api(base: str, api_key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=API_TIMEOUT, headers=headers) as http,
            http.post(f"{base}{path}", json=body) as response,
        ):
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"POST {base}{path} failed: {type(exc).__name__}: {exc}") from None
    if status >= 300:
        raise BenchError(f"POST {base}{path} answered {status}: {raw[:500]!r}")
    result: dict[str, Any] = orjson.loads(raw)
    return result


def _start_serve(
    url: str, sink: Sink, log: Path, *, no_worker: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [str(CONVOHOOK), "serve", "--port", str(port)] + (["--no-worker"] if no_worker else [])
    proc = procs.start(args, log, serve_env(url, sink))
    return proc, f"http://127.0.0.1:{port}"


async def build_template(
    dbs: Databases, sink: Sink, workdir: Path, customers: int, *, outbox: bool, bots: int = 0
) -> Template:
    """Migrated, with org, channel and webhook (through the CLI and the API), `bots` enabled
    bots on conversation.opened (bench/bots.py), and the history."""
    name = f"template_h{customers}" + (f"_b{bots}" if bots else "")
    url = dbs.create(name)
    env = serve_env(url, sink)
    org = orjson.loads(_cli(["orgs", "create", "--name", "bench"], env))
    log = workdir / f"{name}.log"
    proc, base = _start_serve(url, sink, log)
    try:
        await procs.wait_healthy("convohook", f"{base}/healthz", proc, log, HEALTHY_TIMEOUT_S)
        channel = await _api(
            base,
            org["api_key"],
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": HANDLE,
                "account_id": ACCOUNT,
                "access_token": ACCESS_TOKEN,
            },
        )
        webhook = await _api(
            base,
            org["api_key"],
            "/api/v1/webhooks",
            {
                "name": "bench",
                "url": sink.hook,
                "channel_ids": [channel["id"]],
                "events": ["conversation.opened"],
            },
        )
        bot_ids = await bot_studio.create(base, org["api_key"], bots, name)
    finally:
        procs.stop(proc)
    filled: dict[str, Any] = {"customers": 0, "outbox": outbox, "seconds": 0.0}
    if customers:
        print(f"  history: writing {customers:,} past customers ({dbs.dialect})…", flush=True)
        if dbs.dialect == "sqlite":
            filled = history.populate_sqlite(
                url.removeprefix("sqlite:///"), customers, outbox=outbox
            )
        else:
            filled = history.populate_postgres(url, customers, outbox=outbox)
        print(f"  history: done in {filled['seconds']} s", flush=True)
    return Template(url, org["api_key"], webhook["secret"], filled, tuple(bot_ids))


async def start_convohook(
    dbs: Databases,
    template: Template,
    sink: Sink,
    workdir: Path,
    name: str,
    *,
    split: bool,
    serves: int = 1,
) -> Running:
    """`serve`, or with `split`, `serve --no-worker` and one `convohook worker` on the same
    database: HTTP and the workers in two processes, each with its own interpreter lock.
    With `serves` > 1, that many `serve` processes (each with its workers) on the database."""
    url = dbs.clone(template.url, name)
    log = workdir / f"{name}.log"
    proc, base = _start_serve(url, sink, log, no_worker=split)
    running = Running("convohook", base, proc, log, template.webhook_secret, url)
    serving = [(proc, base, log)]
    try:
        for i in range(2, serves + 1):
            more_log = workdir / f"{name}.serve{i}.log"
            more, more_base = _start_serve(url, sink, more_log, no_worker=split)
            running.helpers.append(more)
            running.more_bases.append(more_base)
            serving.append((more, more_base, more_log))
        if split:
            running.helpers.append(
                procs.start(
                    [str(CONVOHOOK), "worker"],
                    workdir / f"{name}.worker.log",
                    serve_env(url, sink),
                )
            )
        for each, each_base, each_log in serving:
            await procs.wait_healthy(
                "convohook", f"{each_base}/healthz", each, each_log, HEALTHY_TIMEOUT_S
            )
    except BaseException:
        stop(running, dbs)
        raise
    return running


async def start_relay(sink: Sink, workdir: Path, name: str) -> Running:
    port = free_port()
    secret = generate_secret()
    log = workdir / f"{name}.log"
    proc = procs.start(
        [
            sys.executable,
            str(BENCH / "relay.py"),
            "--port",
            str(port),
            "--graph-url",
            sink.graph_api_url,
            "--target-url",
            sink.hook,
            "--webhook-secret",
            secret,
        ],
        log,
    )
    running = Running("relay", f"http://127.0.0.1:{port}", proc, log, secret)
    try:
        await procs.wait_healthy(
            "the relay", f"{running.base}/healthz", proc, log, HEALTHY_TIMEOUT_S
        )
    except BaseException:
        stop(running, None)
        raise
    return running


def stop(running: Running, dbs: Databases | None) -> None:
    for helper in running.helpers:
        procs.stop(helper)
    procs.stop(running.proc)
    if dbs is not None and running.database_url is not None:
        dbs.drop(running.database_url)
