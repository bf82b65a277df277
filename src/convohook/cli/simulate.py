"""`convohook simulate`: play Meta against a running server."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
import typer

from convohook.cli.settings import (
    DEMO_ACCOUNT_ID,
    DEMO_APP_SECRET,
    GRAPH_VERSION,
    AppSecret,
    fail,
    load_settings,
)

simulate_app = typer.Typer(help="Play Meta against a running server.", no_args_is_help=True)


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
        fail(str(exc), 1)
    typer.echo(orjson.dumps(outcome).decode())
