"""Settings from flags, the environment and a TOML file, in that order; placeholders refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convohook.config import Settings, settings_from, shown


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
