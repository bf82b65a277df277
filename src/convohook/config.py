"""Typed settings, read once at start and passed explicitly: no module-level configuration."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from convohook.delivery.retry import DEFAULT_SCHEDULE, parse_schedule
from convohook.delivery.ssrf import Networks, parse_networks
from convohook.meta.graph import default_graph_api_url
from convohook.storage.redact import redacted_url
from convohook.storage.sealing import Sealer, parse_key


class Settings(BaseSettings):
    """Every setting comes from a CLI flag, a `CONVOHOOK_*` environment variable or a TOML
    file (`--config`, `CONVOHOOK_CONFIG_FILE`), in that order (`settings_from`)."""

    model_config = SettingsConfigDict(env_prefix="CONVOHOOK_", extra="ignore")

    database_url: str = "sqlite:///./convohook.db"
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    graph_api_url: str = Field(default_factory=default_graph_api_url)
    allow_private_targets: bool = False
    # Private networks webhooks may target although private targets are not allowed.
    allowed_target_networks: Annotated[Networks, NoDecode] = ()
    # NoDecode: the variable is `5,300,1800` (as documented), not JSON; `_schedule` parses it.
    retry_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_SCHEDULE
    public_url: str = "http://127.0.0.1:8000"
    # Secrets at rest (storage/sealing.py): unset, they are stored as given.
    encryption_key: SecretStr | None = None
    encryption_old_keys: SecretStr | None = None  # comma-separated, to open only (rotation)

    # Beyond the public contract: tuning with safe defaults.
    max_inbound_bytes: int = 1_048_576
    delivery_timeout: float = 15.0
    delivery_concurrency: int = 256
    retry_min_delay_after_throttle: float = 30.0  # after a timeout or a 429, seconds
    endpoint_disable_after: float = 5 * 86400.0  # failing without a success this long: disabled
    retention_days: float = 30.0  # payloads, attempts, notifications, captures; 0 keeps all
    graph_timeout: float = 5.0
    profile_deadline: float = 60.0  # how long an opening may wait for its profile, seconds
    profile_ttl: float = 7 * 86400.0  # a cached profile older than this is refreshed on reopen
    demo: bool = False  # `convohook demo`: the UI offers Send a test DM (convohook plays Meta)
    # Workers are woken in process; this is only the safety net for rows another process wrote
    # (`convohook worker` beside `serve --no-worker`), which cannot wake them.
    idle_poll_seconds: float = 30.0
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON unless on a terminal

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_schedule(value)
        if isinstance(value, int | float):
            return (float(value),)
        return value

    @field_validator("allowed_target_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator("meta_app_secret", "meta_verify_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty app secret would make every forged signature valid: treat it as not set.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("encryption_key", "encryption_old_keys", mode="before")
    @classmethod
    def _keys(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            if not value.strip():
                return None
            name = f"CONVOHOOK_{(info.field_name or '').upper()}"
            for part in value.split(","):
                parse_key(part, name)  # refuse a malformed key at start, not at first use
        return value

    def sealer(self) -> Sealer:
        key = self.encryption_key
        old = self.encryption_old_keys
        return Sealer(
            key=parse_key(key.get_secret_value()) if key is not None else None,
            old_keys=[parse_key(k) for k in old.get_secret_value().split(",")] if old else [],
        )

    @field_validator("public_url", "graph_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError(
                "CONVOHOOK_DATABASE_URL must start with sqlite:/// (embedded) or postgresql:// "
                f"(scale-out), got {redacted_url(value)!r}"
            )
        return value

    @model_validator(mode="after")
    def _no_placeholders(self) -> Settings:
        """A secret copied from an example is no secret: anyone can forge Meta's signature with
        it. Accepted only by `convohook demo`, which plays Meta itself."""
        if self.demo:
            return self
        for name in ("meta_app_secret", "meta_verify_token"):
            value: SecretStr | None = getattr(self, name)
            if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDERS:
                raise ValueError(
                    f"CONVOHOOK_{name.upper()} is a placeholder ({value.get_secret_value()!r}), "
                    "accepted only by `convohook demo`: set the value from your Meta app"
                )
        return self


# Example values from our docs and the demo, and the usual stand-ins.
PLACEHOLDERS = frozenset(
    {
        "demo-app-secret",
        "demo-verify-token",
        "...",
        "changeme",
        "change-me",
        "secret",
        "your-app-secret",
        "your-verify-token",
        "xxx",
        "todo",
    }
)


def load_toml(path: Path) -> dict[str, Any]:
    """A configuration file: the settings' names (as in `convohook config show`), e.g.

    database_url = "postgresql://convohook@db/convohook"
    retry_schedule = [5, 300, 1800]
    """
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"configuration file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ValueError(
            f"configuration file {path}: unknown setting(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(Settings.model_fields))
        )
    return data


class ConfigError(ValueError):
    """Settings that cannot be used: one line per problem, each naming its variable and saying
    what to set instead (`problems`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Their values are never repeated in an error, whatever is wrong with them.
SECRET_SETTINGS = frozenset(
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
)


# pydantic's words for the common mistakes, said as what to use instead.
PLAIN_WORDS = {
    "bool_parsing": "must be 1 or 0 (or true or false)",
    "bool_type": "must be 1 or 0 (or true or false)",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string",
}


def settings_from(
    config_file: Path | None, environ: Mapping[str, str], **flags: Any
) -> tuple[Settings, dict[str, str]]:
    """Settings from, in order of precedence, flags, the environment, the file and defaults;
    and where each one came from ("flag", "environment", "file" or "default"). Raises
    `ConfigError` (a `ValueError`) naming each bad setting's variable."""
    from_file = load_toml(config_file) if config_file is not None else {}
    from_env = {name for name in Settings.model_fields if f"CONVOHOOK_{name.upper()}" in environ}
    given = {k: v for k, v in from_file.items() if k not in from_env} | flags
    sources = {}
    for name in Settings.model_fields:
        if name in flags:
            sources[name] = "flag"
        elif name in from_env:
            sources[name] = "environment"
        elif name in from_file:
            sources[name] = f"file {config_file}"
        else:
            sources[name] = "default"
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise ConfigError(
            [_problem(error, sources, config_file) for error in exc.errors()]
        ) from None  # pydantic's own report (and its link) says nothing more to a user
    return settings, sources


def _problem(error: ErrorDetails, sources: Mapping[str, str], config_file: Path | None) -> str:
    """One of pydantic's errors as `CONVOHOOK_NAME (where it was set): what is wrong`."""
    loc = error.get("loc") or ()
    if error["type"] == "value_error":
        # Our validators' messages already name the variable and what to use instead.
        message = str(error["ctx"]["error"])
    elif error["type"] in PLAIN_WORDS:
        message = PLAIN_WORDS[error["type"]]
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    if not loc or not isinstance(loc[0], str) or loc[0] not in Settings.model_fields:
        return message  # a rule across settings (the placeholder check): its message names it
    name = loc[0]
    variable = f"CONVOHOOK_{name.upper()}"
    source = sources.get(name, "default")
    where = (
        f"{variable} (--{name.replace('_', '-')})"
        if source == "flag"
        else f"{variable} ({name} in {config_file})"
        if source.startswith("file")
        else variable
    )
    if message.startswith(variable):
        return where + message[len(variable) :]
    if error["type"] != "value_error" and name not in SECRET_SETTINGS:
        message += f"; got {error.get('input')!r}"
    return f"{where}: {message}"


def shown(settings: Settings) -> dict[str, str]:
    """Every setting as `convohook config show` prints it: secrets masked, a database password
    hidden, tuples as the comma lists the environment takes."""
    out: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = "set (hidden)"
        elif value is None:
            text = "not set"
        elif name == "database_url":
            text = redacted_url(value)
        elif isinstance(value, tuple):
            text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        else:
            text = str(value)
        out[name] = text
    return out
