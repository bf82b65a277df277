"""The `convohook` command: serve, worker, migrate, orgs, users, secrets, retention, config,
simulate, demo, graph-standin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from convohook.config import Settings, settings_from
from convohook.runtime.collector import tune_collector
from convohook.storage.base import MigrationProgress

app = typer.Typer(
    help="convohook: Instagram DMs to reliable, signed Conversation Opened webhooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
orgs_app = typer.Typer(help="Organisations and their API keys.", no_args_is_help=True)
simulate_app = typer.Typer(help="Play Meta against a running server.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the web UI.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Secrets at rest: the key that encrypts them (CONVOHOOK_ENCRYPTION_KEY).",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Old payloads, attempts, notifications and captures.", no_args_is_help=True
)
config_app = typer.Typer(
    help="The settings in effect and where they come from.", no_args_is_help=True
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(simulate_app, name="simulate")
app.add_typer(users_app, name="users")
app.add_typer(secrets_app, name="secrets")
app.add_typer(retention_app, name="retention")
app.add_typer(config_app, name="config")

err = Console(stderr=True)
log = logging.getLogger("convohook.cli")

DEMO_APP_SECRET = "demo-app-secret"  # noqa: S105 - a placeholder, accepted in demo mode only
DEMO_VERIFY_TOKEN = "demo-verify-token"  # noqa: S105
DEMO_ACCOUNT_ID = "17841400000000000"
DEMO_HANDLE = "convohook_demo"
SHUTDOWN_GRACE_S = 5
GRAPH_VERSION = "v24.0"

# Options shared by the commands that run the service; each mirrors a CONVOHOOK_* variable.
DatabaseUrl = Annotated[
    str | None, typer.Option(help="Database URL (env CONVOHOOK_DATABASE_URL).", show_default=False)
]
AppSecret = Annotated[
    str | None, typer.Option(help="Meta app secret (env CONVOHOOK_META_APP_SECRET).")
]
VerifyToken = Annotated[
    str | None, typer.Option(help="Meta verify token (env CONVOHOOK_META_VERIFY_TOKEN).")
]
GraphUrl = Annotated[
    str | None, typer.Option(help="Graph API base with version (env CONVOHOOK_GRAPH_API_URL).")
]
AllowPrivate = Annotated[
    bool | None,
    typer.Option(
        "--allow-private-targets/--no-allow-private-targets",
        help="Allow webhook URLs on private/loopback addresses (env "
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS).",
        show_default=False,
    ),
]
RetrySchedule = Annotated[
    str | None,
    typer.Option(help="Retry delays in seconds, comma-separated (env CONVOHOOK_RETRY_SCHEDULE)."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="CONVOHOOK_CONFIG_FILE",
        help="TOML file of settings (names as `convohook config show` lists them); the "
        "environment and flags override it.",
        show_default=False,
    ),
]
PublicUrl = Annotated[
    str | None, typer.Option(help="URL where this server is reached (env CONVOHOOK_PUBLIC_URL).")
]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Flags over the environment over the file; a bad value exits with what to fix."""
    return _settings_and_sources(config_file, **overrides)[0]


def _settings_and_sources(
    config_file: Path | None, **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return settings_from(config_file, os.environ, **given)
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _setup_logging(settings: Settings) -> None:
    from convohook.runtime.logs import configure

    configure(settings.log_format)


def _migrate(settings: Settings, progress: MigrationProgress | None = None) -> list[str]:
    from convohook.storage.database import open_storage

    try:
        storage = open_storage(settings.database_url, settings.sealer())
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        return storage.migrate(progress or _log_migration)
    finally:
        storage.close()


def _log_migration(name: str, seconds: float | None) -> None:
    # A migration of a large database can take minutes: say what is going on meanwhile.
    if seconds is None:
        log.info("applying migration %s", name)
    else:
        log.info("applied migration %s in %.1f s", name, seconds)


def _print_migration(name: str, seconds: float | None) -> None:
    if seconds is None:
        err.print(f"applying {name}…")
    else:
        err.print(f"  done in {seconds:.1f} s")


@app.command()
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
    _setup_logging(settings)
    if public_url is None and "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    if settings.meta_app_secret is None:
        log.warning(
            "CONVOHOOK_META_APP_SECRET is not set: Meta notifications will be answered 503 "
            "until it is"
        )
    _migrate(settings)
    _check_secrets(settings)
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


@app.command()
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
    _setup_logging(settings)
    _migrate(settings)
    _check_secrets(settings)

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


@app.command()
def migrate(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Apply pending database migrations."""
    settings = load_settings(config, database_url=database_url)
    applied = _migrate(settings, _print_migration)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def _check_secrets(settings: Settings) -> None:
    """Refuse to start with secrets sealed under a key that is not configured (every delivery
    to those webhooks would fail), and say what is stored unencrypted."""
    from convohook.storage.database import open_database
    from convohook.usecases.secrets import survey

    sealer = settings.sealer()
    db = open_database(settings.database_url, sealer)
    try:
        found = db.run_sync(survey, sealer)
    finally:
        db.close()
    if found.unknown_keys:
        log.error(
            "secrets in the database are encrypted with key(s) %s, which are not configured: "
            "set CONVOHOOK_ENCRYPTION_KEY (or CONVOHOOK_ENCRYPTION_OLD_KEYS) to them",
            ", ".join(found.unknown_keys),
        )
        raise typer.Exit(2)
    if found.plain and settings.encryption_key is not None:
        log.warning(
            "%d secret(s) are stored unencrypted: run `convohook secrets seal` to encrypt them "
            "with CONVOHOOK_ENCRYPTION_KEY",
            found.plain,
        )
    elif settings.encryption_key is None and not settings.demo:
        log.warning(
            "CONVOHOOK_ENCRYPTION_KEY is not set: webhook secrets and access tokens are stored "
            "unencrypted (`convohook secrets new-key` makes a key)"
        )


@retention_app.command("run")
def retention_run(
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
    days: Annotated[
        float | None,
        typer.Option(help="Remove what is older than this (default CONVOHOOK_RETENTION_DAYS)."),
    ] = None,
) -> None:
    """Remove now what the workers would remove over the next hours, showing progress; prints
    JSON with what was removed. Batches are small, so a running service is not held up."""
    from convohook.storage.database import open_database
    from convohook.usecases.clock import system_clock
    from convohook.usecases.retention import clean_once

    settings = load_settings(config, database_url=database_url)
    keep = settings.retention_days if days is None else days
    if keep <= 0:
        err.print("[red]error:[/red] retention is off (0 days): nothing to remove")
        raise typer.Exit(2)
    _migrate(settings)
    before = system_clock() - int(keep * 86_400_000)
    totals = {"deliveries": 0, "events": 0, "notifications": 0, "captures": 0}
    db = open_database(settings.database_url, settings.sealer())
    try:
        with err.status("removing…") as status:
            while True:
                cleaned = db.relaxed.run_sync(clean_once, before_ms=before)
                for name in totals:
                    totals[name] += getattr(cleaned, name)
                status.update(
                    "removing… " + ", ".join(f"{n:,} {name}" for name, n in totals.items())
                )
                if cleaned.total == 0:
                    break
    finally:
        db.close()
    typer.echo(orjson.dumps({"older_than_days": keep, "removed": totals}).decode())


@config_app.command("show")
def config_show(
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead.")] = False,
) -> None:
    """Print every setting in effect, its environment variable and where it came from (flag,
    environment, file or default); secrets masked, a database password hidden."""
    from rich.table import Table

    from convohook.config import shown

    settings, sources = _settings_and_sources(config)
    values = shown(settings)
    if as_json:
        typer.echo(
            orjson.dumps(
                {name: {"value": values[name], "source": sources[name]} for name in values}
            ).decode()
        )
        return
    table = Table("setting", "environment variable", "value", "from", box=None)
    for name, value in values.items():
        table.add_row(name, f"CONVOHOOK_{name.upper()}", value, sources[name])
    Console().print(table)


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new random key for CONVOHOOK_ENCRYPTION_KEY."""
    from convohook.storage.sealing import new_key

    typer.echo(new_key())
    err.print(
        "Keep it outside the database (a secret manager); without it the sealed secrets cannot "
        "be read. Set CONVOHOOK_ENCRYPTION_KEY to it, then run `convohook secrets seal`. To "
        "rotate: the new key in CONVOHOOK_ENCRYPTION_KEY, the old one in "
        "CONVOHOOK_ENCRYPTION_OLD_KEYS, `convohook secrets seal`, then drop the old one."
    )


@secrets_app.command("seal")
def secrets_seal(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Encrypt every stored secret with CONVOHOOK_ENCRYPTION_KEY (those stored unencrypted, or
    under a key in CONVOHOOK_ENCRYPTION_OLD_KEYS); prints JSON with the counts."""
    from convohook.storage.database import open_database
    from convohook.storage.sealing import SealError
    from convohook.usecases.secrets import seal_all, survey

    settings = load_settings(config, database_url=database_url)
    if settings.encryption_key is None:
        err.print(
            "[red]error:[/red] CONVOHOOK_ENCRYPTION_KEY is not set: set it to the key to seal "
            "with (`convohook secrets new-key` makes one)"
        )
        raise typer.Exit(2)
    _migrate(settings)
    sealer = settings.sealer()
    db = open_database(settings.database_url, sealer)
    try:
        sealed = db.run_sync(seal_all, sealer)
        found = db.run_sync(survey, sealer)
    except SealError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        db.close()
    typer.echo(orjson.dumps({"sealed": sealed, "unencrypted_left": found.plain}).decode())


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Option(help="The organisation's name.")],
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an organisation; prints JSON with its id and API key (shown only this once)."""
    from convohook.storage.database import open_database
    from convohook.usecases.clock import system_clock
    from convohook.usecases.orgs import create_org

    settings = load_settings(config, database_url=database_url)
    if not name.strip():
        err.print("[red]error:[/red] --name must not be empty")
        raise typer.Exit(2)
    _migrate(settings)
    db = open_database(settings.database_url, settings.sealer())
    try:
        created = db.run_sync(create_org, name.strip(), system_clock())
    finally:
        db.close()
    typer.echo(
        orjson.dumps(
            {"id": created.org.id, "name": created.org.name, "api_key": created.api_key}
        ).decode()
    )


@users_app.command("create")
def users_create(
    org: Annotated[str, typer.Option(help="The organisation's id (from `orgs create`).")],
    email: Annotated[str, typer.Option(help="The email to sign in with.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="CONVOHOOK_NEW_USER_PASSWORD",
            help="At least 10 characters (prompted when not given).",
        ),
    ],
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user of an organisation for the web UI; prints JSON with its id."""
    from convohook.storage.database import open_database
    from convohook.storage.errors import ConflictError
    from convohook.usecases.clock import system_clock
    from convohook.usecases.users import WeakPassword, create_user

    settings = load_settings(config, database_url=database_url)
    _migrate(settings)
    db = open_database(settings.database_url, settings.sealer())
    try:
        user = db.run_sync(create_user, org, email, password, system_clock())
    except WeakPassword as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ConflictError as exc:
        err.print(
            f"[red]error:[/red] could not create {email}: the email is taken, or no organisation "
            f"has the id {org} (see `convohook orgs create`)"
        )
        raise typer.Exit(2) from exc
    finally:
        db.close()
    typer.echo(orjson.dumps({"id": user.id, "org_id": user.org_id, "email": user.email}).decode())


@simulate_app.command("dm")
def simulate_dm(
    sender: Annotated[str, typer.Option("--from", help="The customer's Instagram username.")],
    name: Annotated[str | None, typer.Option(help="The customer's display name.")] = None,
    text: Annotated[str, typer.Option(help="The message text.")] = "Hi! Is this available?",
    server: Annotated[str, typer.Option(help="The running convohook.")] = "http://127.0.0.1:8000",
    account_id: Annotated[
        str, typer.Option(help="The channel's Instagram account id (entry[].id).")
    ] = DEMO_ACCOUNT_ID,
    app_secret: AppSecret = None,
    graph_url: Annotated[
        str | None,
        typer.Option(
            help="Graph API stand-in where the profile is registered (default: the demo's, "
            "SERVER/_demo/graph)."
        ),
    ] = None,
    register_profile: Annotated[
        bool, typer.Option(help="Register the profile with the stand-in first.")
    ] = True,
    mid: Annotated[str | None, typer.Option(help="Message id (default: a new one).")] = None,
    timestamp_ms: Annotated[int | None, typer.Option(help="Meta timestamp (default: now).")] = None,
) -> None:
    """Send a correctly signed Meta-format DM to a running server."""
    from convohook.devtools.simulate import SimulationError, send_dm

    secret = app_secret or load_settings().meta_app_secret
    secret_value = (
        secret
        if isinstance(secret, str)
        else (secret.get_secret_value() if secret else DEMO_APP_SECRET)
    )
    try:
        outcome = asyncio.run(
            send_dm(
                server=server.rstrip("/"),
                username=sender.removeprefix("@"),
                name=name,
                text=text,
                account_id=account_id,
                app_secret=secret_value,
                graph_url=(graph_url or f"{server.rstrip('/')}/_demo/graph/{GRAPH_VERSION}"),
                register=register_profile,
                mid=mid,
                timestamp_ms=timestamp_ms,
            )
        )
    except SimulationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(orjson.dumps(outcome).decode())


@app.command("graph-standin")
def graph_standin(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
) -> None:
    """Run a local stand-in for the Instagram Graph API (profiles), for tests and demos."""
    from convohook.devtools.graph_standin import create_graph_standin

    err.print(f"Graph API stand-in on http://{host}:{port}/{GRAPH_VERSION}")
    uvicorn.run(create_graph_standin(), host=host, port=port, access_log=False)


@app.command()
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
