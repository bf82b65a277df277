"""Settings from flags, the environment and a TOML file, in that order; placeholders refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convohook.config import ConfigError, Settings, settings_from, shown


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "convohook.toml"
    path.write_text(text)
    return path


def test_flags_over_environment_over_file_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(
        tmp_path,
        'database_url = "sqlite:///file.db"\n'
        "retention_days = 3\n"
        "retry_schedule = [5, 60]\n"
        'public_url = "https://file.example"\n',
    )
    environ = {"CONVOHOOK_RETENTION_DAYS": "7", "CONVOHOOK_PUBLIC_URL": "https://env.example"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings, sources = settings_from(path, environ, public_url="https://flag.example")
    assert settings.database_url == "sqlite:///file.db"
    assert settings.retention_days == 7
    assert settings.retry_schedule == (5.0, 60.0)
    assert settings.public_url == "https://flag.example"
    assert settings.delivery_timeout == Settings().delivery_timeout
    assert sources["database_url"] == f"file {path}"
    assert sources["retention_days"] == "environment"
    assert sources["public_url"] == "flag"
    assert sources["delivery_timeout"] == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope = 1\n", "unknown setting(s) nope; known: allow_private_targets"),
        ("database_url = \n", "is not valid TOML"),
        ('database_url = "mysql://x"\n', "must start with sqlite:///"),
        ('retention_days = "many"\n', "retention_days"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        settings_from(_file(tmp_path, text), {})


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        settings_from(tmp_path / "absent.toml", {})


@pytest.mark.parametrize("value", ["demo-app-secret", "...", "changeme", " Secret "])
def test_placeholder_secrets_are_refused_outside_demo_mode(value: str) -> None:
    with pytest.raises(ValueError, match=r"placeholder.*convohook demo"):
        Settings(meta_app_secret=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CONVOHOOK_META_VERIFY_TOKEN is a placeholder"):
        Settings(meta_verify_token=value)  # type: ignore[arg-type]
    assert Settings(meta_app_secret=value, demo=True).meta_app_secret is not None  # type: ignore[arg-type]


def test_shown_masks_secrets_and_database_passwords() -> None:
    settings = Settings(
        database_url="postgresql://app:hunter2@db/convohook",
        meta_app_secret="a-real-app-secret",  # type: ignore[arg-type]
    )
    values = shown(settings)
    assert values["database_url"] == "postgresql://app:***@db/convohook"
    assert values["meta_app_secret"] == "set (hidden)"
    assert values["meta_verify_token"] == "not set"
    assert values["retry_schedule"] == "5,300,1800,7200,18000,36000,36000"
    assert "hunter2" not in str(values)
    assert "a-real-app-secret" not in str(values)


def test_each_bad_setting_is_one_line_naming_its_variable_and_what_to_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {
        "CONVOHOOK_RETENTION_DAYS": "many",
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS": "maybe",
        "CONVOHOOK_LOG_FORMAT": "xml",
        "CONVOHOOK_RETRY_SCHEDULE": "5,abc",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as raised:
        settings_from(None, environ)

    assert sorted(raised.value.problems) == [
        "CONVOHOOK_ALLOW_PRIVATE_TARGETS: must be 1 or 0 (or true or false); got 'maybe'",
        "CONVOHOOK_LOG_FORMAT: input should be 'auto', 'json' or 'text'; got 'xml'",
        "CONVOHOOK_RETENTION_DAYS: must be a number; got 'many'",
        "CONVOHOOK_RETRY_SCHEDULE must be comma-separated positive numbers of seconds "
        "(e.g. '5,300,1800'), got '5,abc'",
    ]
    assert "pydantic" not in str(raised.value)
    assert str(raised.value) == "\n".join(raised.value.problems)


def test_a_bad_setting_says_where_it_was_set(tmp_path: Path) -> None:
    path = _file(tmp_path, 'retry_schedule = [5, "soon"]\n')

    with pytest.raises(ConfigError) as from_file:
        settings_from(path, {})
    with pytest.raises(ConfigError) as from_flag:
        settings_from(None, {}, delivery_timeout="fast")

    assert from_file.value.problems == [
        f"CONVOHOOK_RETRY_SCHEDULE (retry_schedule in {path}): must be a number; got 'soon'"
    ]
    assert from_flag.value.problems == [
        "CONVOHOOK_DELIVERY_TIMEOUT (--delivery-timeout): must be a number; got 'fast'"
    ]


def test_a_bad_setting_never_repeats_a_secret(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        'meta_app_secret = 918273645546372819\ndatabase_url = "mysql://app:hunter2@db/convohook"\n',
    )

    with pytest.raises(ConfigError) as raised:
        settings_from(path, {})

    assert sorted(raised.value.problems) == [
        f"CONVOHOOK_DATABASE_URL (database_url in {path}) must start with sqlite:/// "
        "(embedded) or postgresql:// (scale-out), got 'mysql://app:***@db/convohook'",
        f"CONVOHOOK_META_APP_SECRET (meta_app_secret in {path}): must be a string",
    ]
    assert "918273645546372819" not in str(raised.value)
    assert "hunter2" not in str(raised.value)
