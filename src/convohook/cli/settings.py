"""What every command shares: the options that mirror `CONVOHOOK_*` variables, settings loaded
from flags, the environment and a file, and the console errors go to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from convohook.config import ConfigError, Settings, settings_from

err = Console(stderr=True)


DEMO_APP_SECRET = "demo-app-secret"  # noqa: S105 - a placeholder, accepted in demo mode only
DEMO_VERIFY_TOKEN = "demo-verify-token"  # noqa: S105
DEMO_ACCOUNT_ID = "17841400000000000"
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


def fail(message: str, code: int = 2, *, what: str = "error") -> NoReturn:
    """End the command with one line on stderr saying what went wrong and how to fix it."""
    say(message, what=what)
    raise typer.Exit(code)


def say(message: str, *, what: str = "error") -> None:
    # Not wrapped at the terminal's width (a line a user can grep), and never read as markup:
    # messages quote values that may hold brackets.
    err.print(f"[red]{what}:[/red] {escape(message)}", soft_wrap=True)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Flags over the environment over the file; a bad value exits with what to fix."""
    return settings_and_sources(config_file, **overrides)[0]


def settings_and_sources(
    config_file: Path | None, **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return settings_from(config_file, os.environ, **given)
    except ConfigError as exc:
        for problem in exc.problems:
            say(problem, what="configuration error")
        raise typer.Exit(2) from None
    except ValueError as exc:  # the file: missing, not TOML, unknown keys
        fail(str(exc), what="configuration error")


def setup_logging(settings: Settings) -> None:
    from convohook.runtime.logs import configure

    configure(settings.log_format)
