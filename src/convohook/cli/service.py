"""The commands that run the service: serve, worker, migrate, demo, graph-standin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from convohook.cli.database import check_secrets, print_migration, run_migrations
from convohook.cli.settings import (
    DEMO_APP_SECRET,
    DEMO_VERIFY_TOKEN,
    GRAPH_VERSION,
    AllowPrivate,
    AppSecret,
    ConfigFile,
    DatabaseUrl,
    GraphUrl,
    PublicUrl,
    RetrySchedule,
    VerifyToken,
    err,
    load_settings,
    setup_logging,
)
from convohook.config import Settings
from convohook.runtime.collector import tune_collector

log = logging.getLogger("convohook.cli")

SHUTDOWN_GRACE_S = 5


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve HTTP only; run `convohook worker` apart.")
    ] = False,
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    meta_app_secret: AppSecret = None,
    meta_verify_token: VerifyToken = None,
    graph_api_url: GraphUrl = None,
    allow_private_targets: AllowPrivate = None,
    retry_schedule: RetrySchedule = None,
    public_url: PublicUrl = None,
) -> None:
    """Serve the API, the Meta receiver and capture bots, with in-process workers."""
    from convohook.web.app import create_app

    settings = load_settings(
        config,
        database_url=database_url,
        meta_app_secret=meta_app_secret,
        meta_verify_token=meta_verify_token,
        graph_api_url=graph_api_url,
        allow_private_targets=allow_private_targets,
        retry_schedule=retry_schedule,
        public_url=public_url,
    )
    setup_logging(settings)
    if public_url is None and "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    if settings.meta_app_secret is None:
        log.warning(
            "CONVOHOOK_META_APP_SECRET is not set: Meta notifications will be answered 503 "
            "until it is"
        )
    run_migrations(settings)
    check_secrets(settings)
    server_app = create_app(settings, workers=not no_worker)
    tune_collector()
    uvicorn.run(
        server_app,
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        log_config=None,  # uvicorn's loggers go through ours (JSON lines or text)
        # Bot Studio's live streams never end by themselves: on shutdown, wait this long for
        # requests in flight (a Meta POST commits in milliseconds), then close what is left.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


def worker(
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    graph_api_url: GraphUrl = None,
    allow_private_targets: AllowPrivate = None,
    retry_schedule: RetrySchedule = None,
    public_url: PublicUrl = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="CONVOHOOK_WORKER_METRICS_PORT",
            help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics.",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run processing and delivery only (no API; metrics with --metrics-port)."""
    from convohook.runtime.scrape import serve_metrics
    from convohook.runtime.services import build_services
    from convohook.runtime.workers import run_workers

    settings = load_settings(
        config,
        database_url=database_url,
        graph_api_url=graph_api_url,
        allow_private_targets=allow_private_targets,
        retry_schedule=retry_schedule,
        public_url=public_url,
    )
    setup_logging(settings)
    run_migrations(settings)
    check_secrets(settings)

    async def main() -> None:
        services = await build_services(settings)
        tune_collector()
        stop_metrics = (
            await serve_metrics(services, metrics_host, metrics_port)
            if metrics_port is not None
            else None
        )
        try:
            # Woken by the server's writes: on SQLite, by watching the file for commits.
            await run_workers(services, watch_other_processes=True)
        finally:
            if stop_metrics is not None:
                await stop_metrics()
            await services.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def migrate(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Apply pending database migrations."""
    settings = load_settings(config, database_url=database_url)
    applied = run_migrations(settings, print_migration)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def graph_standin(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
) -> None:
    """Run a local stand-in for the Instagram Graph API (profiles), for tests and demos."""
    from convohook.devtools.graph_standin import create_graph_standin

    err.print(f"Graph API stand-in on http://{host}:{port}/{GRAPH_VERSION}")
    uvicorn.run(create_graph_standin(), host=host, port=port, access_log=False)


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    database: Annotated[
        Path, typer.Option(help="SQLite file for the demo (recreated at each start).")
    ] = Path("convohook-demo.db"),
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the first payload arrives.")
    ] = False,
    first_dm: Annotated[
        bool, typer.Option(help="Send a first simulated DM as soon as the server is up.")
    ] = True,
) -> None:
    """Everything at once: server, a demo channel, a capture bot subscribed to Conversation
    Opened, a local Graph API, and a first DM; captured payloads are printed as they arrive."""
    from convohook.devtools.demo import run_demo
    from convohook.runtime.logs import configure

    configure("text")  # a person watches the demo
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{database}{suffix}").unlink()
    public_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        meta_app_secret=DEMO_APP_SECRET,  # type: ignore[arg-type]
        meta_verify_token=DEMO_VERIFY_TOKEN,  # type: ignore[arg-type]
        graph_api_url=f"{public_url}/_demo/graph/{GRAPH_VERSION}",
        public_url=public_url,
        demo=True,
    )
    started = time.monotonic()
    code = asyncio.run(run_demo(settings, port=port, once=once, first_dm=first_dm))
    if once:
        err.print(f"demo finished in {time.monotonic() - started:.1f} s")
    raise typer.Exit(code)
