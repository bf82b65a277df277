"""The `convohook` commands of the public contract (DESIGN section 5), run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from e2e_support import (
    APP_SECRET,
    Customer,
    Service,
    Stack,
    cli_env,
    describe,
    free_port,
    run_cli,
)
from harness import ADMIN_URL

pytestmark = pytest.mark.e2e


async def simulate_dm(
    stack: Stack, *options: str, server: str | None = None, account_id: str | None = None
) -> tuple[int, str, str]:
    args = [
        "simulate",
        "dm",
        *options,
        "--server",
        server or stack.deployment.base_url,
        "--account-id",
        account_id or stack.account_id,
        "--app-secret",
        APP_SECRET,
        "--graph-url",
        stack.deployment.graph_url,
    ]
    result = await asyncio.to_thread(run_cli, *args, env=cli_env())
    return result.returncode, result.stdout, result.stderr


async def test_simulate_dm_plays_a_customer_against_a_running_server(stack: Stack) -> None:
    code, out, err = await simulate_dm(stack, "--from", "alice", "--name", "Alice A")

    assert code == 0, (out, err)
    sent = json.loads(out)
    assert (sent["status"], sent["username"], sent["account_id"]) == (
        200,
        "alice",
        stack.account_id,
    )
    alice = Customer(igsid=sent["igsid"], username="alice", name="Alice A")
    delivery = await stack.assert_opened_once(alice)
    assert (delivery.json()["from"], delivery.json()["customerName"]) == ("alice", "Alice A")
    (contact,) = await stack.contacts("alice")
    assert contact["igsid"] == sent["igsid"]


async def test_simulate_dm_says_when_it_cannot_reach_convohook(stack: Stack) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    code, out, err = await simulate_dm(stack, "--from", "bob", server=nowhere)

    assert code != 0, (out, err)
    message = " ".join(err.split())
    assert "could not reach convohook" in message, err
    assert nowhere in message, err


async def test_simulate_dm_to_an_account_no_channel_has_says_so(stack: Stack) -> None:
    code, out, err = await simulate_dm(stack, "--from", "carol", account_id="999")

    assert code == 1, (out, err)
    assert out == ""
    assert err.splitlines() == [
        "error: no channel has Instagram account 999: connect it (Settings → Channels, or POST "
        "/api/v1/channels with this account_id), or send to a connected channel's account "
        "(--account-id); convohook acknowledged the DM and skipped it"
    ], err


@pytest.mark.slow
def test_demo_once_prints_the_captured_payload(tmp_path: Path) -> None:
    port = free_port()
    result = run_cli(
        "demo",
        "--once",
        "--port",
        str(port),
        "--database",
        str(tmp_path / "demo.db"),
        env=cli_env(),
        timeout=90,
    )

    assert result.returncode == 0, describe(result)
    assert '"conversationOpened": true' in result.stdout, describe(result)
    assert '"from": "ada.lovelace"' in result.stdout, describe(result)
    assert f"http://127.0.0.1:{port}/login" in result.stdout, describe(result)  # the web UI
    assert "demo@convohook.local" in result.stdout, describe(result)
    # The Welcome bot answered Ada's first message and assigned the conversation, whose
    # conversation.assigned the capture bot received too.
    assert "Welcome bot ran done" in result.stdout, describe(result)
    assert "send_message done (reply out_" in result.stdout, describe(result)
    assert "assign done (assigned to" in result.stdout, describe(result)
    assert '"assignee": {' in result.stdout, describe(result)


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    env = cli_env(CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")

    first = run_cli("migrate", env=env)
    again = run_cli("migrate", env=env)

    assert first.returncode == 0, describe(first)
    assert first.stdout.startswith("applied: "), describe(first)
    assert "0001_initial" in first.stdout, describe(first)
    assert "applying 0001_initial…" in first.stderr, describe(first)  # progress as it goes
    assert "done in " in first.stderr, describe(first)
    assert again.returncode == 0, describe(again)
    assert again.stdout.strip() == "database is up to date", describe(again)


def test_users_create_makes_an_agent_who_signs_in_named_as_asked(tmp_path: Path) -> None:
    env = cli_env(
        CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'users.db'}",
        CONVOHOOK_NEW_USER_PASSWORD="correct horse battery",
    )
    org = run_cli("orgs", "create", "--name", "Acme", env=env)
    assert org.returncode == 0, describe(org)
    org_id = json.loads(org.stdout)["id"]

    named = run_cli(
        "users", "create", "--org", org_id, "--email", "Ada@Acme.test", "--name", "Ada", env=env
    )
    unnamed = run_cli("users", "create", "--org", org_id, "--email", "bob@acme.test", env=env)

    assert named.returncode == 0, describe(named)
    assert unnamed.returncode == 0, describe(unnamed)
    made = json.loads(named.stdout)
    assert (made["email"], made["name"], made["org_id"]) == ("ada@acme.test", "Ada", org_id)
    assert json.loads(unnamed.stdout)["name"] == "bob@acme.test"  # until someone names Bob


def test_serve_accepts_a_comma_separated_retry_schedule_in_the_environment(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = cli_env(
        CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        CONVOHOOK_RETRY_SCHEDULE="5,300,1800",
    )
    server = Service("serve", ["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        server.wait_until_serving(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.stop()


def _plain_secrets(database_url: str) -> None:
    """A channel and a webhook written before any key was configured."""
    from convohook.domain.model import Channel, Webhook
    from convohook.storage.database import open_database
    from convohook.usecases.orgs import create_org

    db = open_database(database_url)
    try:
        db.storage.migrate()

        def write(tx: Any) -> None:
            org = create_org(tx, "Sealed", 1).org
            tx.insert_channel(Channel("ch_s", org.id, "INSTAGRAM", "shop", "1", "tok-123456", 1))
            tx.insert_webhook(
                Webhook(
                    "wh_s", org.id, "crm", "https://example.com/h", "INSTAGRAM", ("ch_s",),
                    ("conversation.opened",), True, None, "whsec_" + "B" * 43, 1, 1,
                )
            )  # fmt: skip

        db.run_sync(write)
    finally:
        db.close()


def test_secrets_are_sealed_by_the_cli_and_a_missing_key_stops_the_service(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'sealed.db'}"
    _plain_secrets(database_url)
    env = cli_env(CONVOHOOK_DATABASE_URL=database_url)

    made = run_cli("secrets", "new-key", env=env)
    assert made.returncode == 0, describe(made)
    key = made.stdout.strip()
    assert len(key) == 43
    assert "CONVOHOOK_ENCRYPTION_KEY" in made.stderr

    keyless = run_cli("secrets", "seal", env=env)
    assert keyless.returncode == 2, describe(keyless)
    assert "CONVOHOOK_ENCRYPTION_KEY is not set" in keyless.stderr

    sealed = run_cli("secrets", "seal", env=env | {"CONVOHOOK_ENCRYPTION_KEY": key})
    assert sealed.returncode == 0, describe(sealed)
    assert json.loads(sealed.stdout) == {"sealed": 2, "unencrypted_left": 0}
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("sealed.db*"))
    assert b"tok-123456" not in raw
    assert b"B" * 43 not in raw

    other = run_cli("secrets", "new-key", env=env).stdout.strip()
    for command in (["serve", "--port", str(free_port())], ["worker"]):
        refused = run_cli(*command, env=env | {"CONVOHOOK_ENCRYPTION_KEY": other})
        assert refused.returncode == 2, describe(refused)
        assert "which are not configured" in refused.stderr, describe(refused)

    malformed = run_cli("migrate", env=env | {"CONVOHOOK_ENCRYPTION_KEY": "not-a-key"})
    assert malformed.returncode == 2, describe(malformed)
    assert "convohook secrets new-key" in malformed.stderr, describe(malformed)


def test_settings_come_from_a_toml_file_and_config_show_says_from_where(tmp_path: Path) -> None:
    database = tmp_path / "from-file.db"
    config = tmp_path / "convohook.toml"
    config.write_text(
        f'database_url = "sqlite:///{database}"\n'
        'meta_app_secret = "a-real-app-secret-0123"\n'
        "retention_days = 3\n"
    )
    env = cli_env(CONVOHOOK_CONFIG_FILE=str(config), CONVOHOOK_RETENTION_DAYS="9")

    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0, describe(migrated)
    assert database.exists()  # the file's database, not the default ./convohook.db

    shown = run_cli("config", "show", "--json", env=env)
    assert shown.returncode == 0, describe(shown)
    settings = json.loads(shown.stdout)
    assert settings["database_url"] == {
        "value": f"sqlite:///{database}",
        "source": f"file {config}",
    }
    assert settings["retention_days"] == {"value": "9.0", "source": "environment"}
    assert settings["meta_app_secret"]["value"] == "set (hidden)"
    assert "a-real-app-secret-0123" not in shown.stdout

    table = run_cli("config", "show", env=env)
    assert table.returncode == 0, describe(table)
    assert "CONVOHOOK_RETENTION_DAYS" in table.stdout
    assert "a-real-app-secret-0123" not in table.stdout


def test_a_placeholder_app_secret_is_refused_outside_demo_mode(tmp_path: Path) -> None:
    env = cli_env(
        CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
        CONVOHOOK_META_APP_SECRET="demo-app-secret",
    )
    refused = run_cli("serve", "--port", str(free_port()), env=env)
    assert refused.returncode == 2, describe(refused)
    assert "CONVOHOOK_META_APP_SECRET is a placeholder" in refused.stderr, describe(refused)


DATABASE_COMMANDS = [
    ["migrate"],
    ["serve", "--port", "0"],
    ["worker"],
    ["orgs", "create", "--name", "Acme"],
]


def _database_refused(command: list[str], database_url: str) -> str:
    """The one line a command prints when the database cannot be reached (it exits 1)."""
    # An app secret and a key, so that nothing before the database has a warning to log.
    env = cli_env(
        CONVOHOOK_DATABASE_URL=database_url,
        CONVOHOOK_META_APP_SECRET="e2e-app-secret-for-refusals",
        COLUMNS="60",
    )
    result = run_cli(*command, env=env)
    assert result.returncode == 1, describe(result)
    assert result.stdout == "", describe(result)
    (line,) = result.stderr.splitlines()  # no traceback, no pool retries logged before it
    return line


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_closed_postgresql_port_is_one_line_saying_so(command: list[str]) -> None:
    port = free_port()

    line = _database_refused(command, f"postgresql://app:hunter2@127.0.0.1:{port}/convohook")

    assert line == (
        f"error: cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused): check "
        "that PostgreSQL runs there and accepts connections, or fix the host and port in "
        f"CONVOHOOK_DATABASE_URL (postgresql://app:***@127.0.0.1:{port}/convohook)"
    )


@pytest.mark.parametrize("command", DATABASE_COMMANDS[:2], ids=lambda c: c[0])
def test_a_missing_postgresql_database_is_one_line_saying_how_to_create_it(
    command: list[str], request: pytest.FixtureRequest
) -> None:
    from convohook.storage.redact import redacted_url

    request.getfixturevalue("postgres_template")  # PostgreSQL is reachable (or skip/fail)
    name = f"convohook_absent_{uuid.uuid4().hex[:8]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    line = _database_refused(command, url)

    assert line.startswith("error: PostgreSQL at "), line
    assert f" has no database '{name}': create it with `createdb " in line, line
    assert line.endswith(
        f" {name}`, or fix the database name in CONVOHOOK_DATABASE_URL ({redacted_url(url)})"
    ), line


def test_an_sqlite_file_that_cannot_be_opened_is_one_line_saying_so(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("")
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("x" * 4096)

    for path, cause in ((not_a_directory / "convohook.db", "File exists"),
                        (not_a_database, "file is not a database")):  # fmt: skip
        line = _database_refused(["migrate"], f"sqlite:///{path}")
        assert line.startswith(f"error: cannot open the SQLite database {path} ("), line
        assert cause in line, line
        assert line.endswith(
            "check the path in CONVOHOOK_DATABASE_URL, and that this user may create and "
            "write files there"
        ), line


def test_bad_settings_are_one_line_each_naming_the_variable(tmp_path: Path) -> None:
    env = cli_env(
        CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}",
        CONVOHOOK_RETENTION_DAYS="many",
        CONVOHOOK_LOG_FORMAT="xml",
        COLUMNS="60",  # narrower than the lines: none may be wrapped
    )

    refused = run_cli("migrate", env=env)

    assert refused.returncode == 2, describe(refused)
    assert refused.stderr.splitlines() == [
        "configuration error: CONVOHOOK_RETENTION_DAYS: must be a number; got 'many'",
        "configuration error: CONVOHOOK_LOG_FORMAT: input should be 'auto', 'json' or 'text'; "
        "got 'xml'",
    ], describe(refused)
    assert not (tmp_path / "never.db").exists()


def test_retention_run_removes_what_is_older_and_says_how_much(tmp_path: Path) -> None:
    from convohook.storage.database import open_database

    database_url = f"sqlite:///{tmp_path / 'old.db'}"
    db = open_database(database_url)
    try:
        db.storage.migrate()
        recent = int(time.time() * 1000)
        old = recent - 31 * 86_400_000

        def write(tx: Any) -> None:
            tx.insert_notifications([b"{}"] * 3, old)
            tx.insert_notifications([b"{}"], recent)
            ids = [stored.id for stored in tx.pending_notifications(10)]
            tx.mark_notifications_processed(ids[:3], old)
            tx.mark_notifications_processed(ids[3:], recent)

        db.run_sync(write)
    finally:
        db.close()
    env = cli_env(CONVOHOOK_DATABASE_URL=database_url)

    removed = run_cli("retention", "run", "--days", "30", env=env)
    assert removed.returncode == 0, describe(removed)
    assert json.loads(removed.stdout)["removed"]["notifications"] == 3  # not the recent one
    again = run_cli("retention", "run", "--days", "30", env=env)
    assert json.loads(again.stdout)["removed"]["notifications"] == 0

    off = run_cli("retention", "run", "--days", "0", env=env)
    assert off.returncode == 2, describe(off)
    assert "retention is off" in off.stderr
