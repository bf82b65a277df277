"""Administration: organisations, users, secrets at rest, retention and the settings in effect."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console

from convohook.cli.database import run_migrations
from convohook.cli.settings import (
    ConfigFile,
    DatabaseUrl,
    err,
    fail,
    load_settings,
    settings_and_sources,
)

orgs_app = typer.Typer(help="Organisations and their API keys.", no_args_is_help=True)
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
        fail("retention is off (0 days): nothing to remove")
    run_migrations(settings)
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

    settings, sources = settings_and_sources(config)
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
        fail(
            "CONVOHOOK_ENCRYPTION_KEY is not set: set it to the key to seal "
            "with (`convohook secrets new-key` makes one)"
        )
    run_migrations(settings)
    sealer = settings.sealer()
    db = open_database(settings.database_url, sealer)
    try:
        sealed = db.run_sync(seal_all, sealer)
        found = db.run_sync(survey, sealer)
    except SealError as exc:
        fail(str(exc))
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
        fail("--name must not be empty")
    run_migrations(settings)
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
    name: Annotated[
        str | None,
        typer.Option(help="The name colleagues know them by, shown as an agent (default: email)."),
    ] = None,
    config: ConfigFile = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user of an organisation for the web UI (an agent too); prints JSON with its id."""
    from convohook.storage.database import open_database
    from convohook.storage.errors import ConflictError
    from convohook.usecases.clock import system_clock
    from convohook.usecases.users import WeakPassword, create_user

    settings = load_settings(config, database_url=database_url)
    run_migrations(settings)
    db = open_database(settings.database_url, settings.sealer())
    try:
        user = db.run_sync(create_user, org, email, password, system_clock(), name)
    except WeakPassword as exc:
        fail(str(exc))
    except ConflictError:
        fail(
            f"could not create {email}: the email is taken, or no organisation "
            f"has the id {org} (see `convohook orgs create`)"
        )
    finally:
        db.close()
    typer.echo(
        orjson.dumps(
            {"id": user.id, "org_id": user.org_id, "email": user.email, "name": user.name}
        ).decode()
    )
