"""The `convohook` command: serve, worker, migrate, orgs, users, secrets, retention, config,
simulate, demo, graph-standin. One module per group of commands; this one assembles them."""

from __future__ import annotations

import sys

import typer

from convohook.cli import admin, service
from convohook.cli.settings import say
from convohook.cli.simulate import simulate_app
from convohook.storage.errors import CannotConnect

app = typer.Typer(
    help="convohook: Instagram DMs to reliable, signed Conversation Opened webhooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(service.serve)
app.command()(service.worker)
app.command()(service.migrate)
app.command("graph-standin")(service.graph_standin)
app.command()(service.demo)
app.add_typer(admin.orgs_app, name="orgs")
app.add_typer(simulate_app, name="simulate")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.secrets_app, name="secrets")
app.add_typer(admin.retention_app, name="retention")
app.add_typer(admin.config_app, name="config")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except CannotConnect as exc:
        # Any command that opens the database: its message says why and what to do; a
        # traceback would add nothing but noise above it.
        say(str(exc))
        sys.exit(1)
