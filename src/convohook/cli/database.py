"""The database as the commands open it: migrated first, and refused while secrets are sealed
under a key that is not configured."""

from __future__ import annotations

import logging

import typer

from convohook.cli.settings import err, fail
from convohook.config import Settings
from convohook.storage.base import MigrationProgress

log = logging.getLogger("convohook.cli")


def run_migrations(settings: Settings, progress: MigrationProgress | None = None) -> list[str]:
    from convohook.storage.database import open_storage

    try:
        storage = open_storage(settings.database_url, settings.sealer())
    except ValueError as exc:
        fail(str(exc))
    try:
        return storage.migrate(progress or log_migration)
    finally:
        storage.close()


def log_migration(name: str, seconds: float | None) -> None:
    # A migration of a large database can take minutes: say what is going on meanwhile.
    if seconds is None:
        log.info("applying migration %s", name)
    else:
        log.info("applied migration %s in %.1f s", name, seconds)


def print_migration(name: str, seconds: float | None) -> None:
    if seconds is None:
        err.print(f"applying {name}…")
    else:
        err.print(f"  done in {seconds:.1f} s")


def check_secrets(settings: Settings) -> None:
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
