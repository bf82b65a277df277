"""What a user reads when the database cannot be reached: the cause and what to do, in one
line, with no password in it. (Refused and missing databases are also run through the CLI in
tests/e2e/test_cli.py; the causes below cannot be produced against the test server.)"""

from __future__ import annotations

import pytest

from convohook.storage.postgres import cannot_connect_message
from convohook.storage.redact import redacted_url

URL = "postgresql://app:hunter2@db.internal:6432/convohook"
AT = 'connection failed: connection to server at "10.0.0.7", port 6432 failed: '


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (
            AT + 'FATAL:  password authentication failed for user "app"',
            "PostgreSQL at db.internal:6432 refused user 'app' (password authentication failed "
            'for user "app"): fix the user or password in CONVOHOOK_DATABASE_URL '
            "(postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            AT + 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "app", database '
            '"convohook", no encryption',
            "PostgreSQL at db.internal:6432 refused the connection (no pg_hba.conf entry for "
            'host "10.0.0.9", user "app", database "convohook", no encryption): allow this host '
            "and user in its pg_hba.conf, or fix the user in CONVOHOOK_DATABASE_URL "
            "(postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            AT + "timeout expired",
            "no answer from PostgreSQL at db.internal:6432 (timeout expired): check that it runs "
            "and that no firewall drops the connection, or fix CONVOHOOK_DATABASE_URL "
            "(postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            "failed to resolve host 'db.internal': [Errno -2] Name or service not known",
            "the host 'db.internal' in CONVOHOOK_DATABASE_URL does not resolve: fix it "
            "(postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            AT + 'FATAL:  database "convohook" does not exist',
            "PostgreSQL at db.internal:6432 has no database 'convohook': create it with "
            "`createdb -h db.internal -p 6432 -U app convohook`, or fix the database name in "
            "CONVOHOOK_DATABASE_URL (postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            AT + "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
            "connections?",
            "cannot connect to PostgreSQL at db.internal:6432 (connection refused): check that "
            "PostgreSQL runs there and accepts connections, or fix the host and port in "
            "CONVOHOOK_DATABASE_URL (postgresql://app:***@db.internal:6432/convohook)",
        ),
        (
            AT + "FATAL:  the database system is starting up",
            "cannot connect to PostgreSQL at db.internal:6432 (the database system is starting "
            "up): check that it runs and that CONVOHOOK_DATABASE_URL is right "
            "(postgresql://app:***@db.internal:6432/convohook)",
        ),
    ],
    ids=["password", "pg_hba", "timeout", "unresolved", "no-database", "refused", "other"],
)
def test_the_cause_and_what_to_do_in_one_line(cause: str, expected: str) -> None:
    message = cannot_connect_message(URL, cause)

    assert message == expected
    assert "\n" not in message
    assert "hunter2" not in message


def test_a_socket_and_defaults_are_named_as_such() -> None:
    message = cannot_connect_message(
        "postgresql:///convohook",
        'connection failed: connection to server on socket "/run/postgresql/.s.PGSQL.5432" '
        'failed: FATAL:  database "convohook" does not exist',
    )

    assert message == (
        "PostgreSQL at the socket in the default directory (port 5432) has no database "
        "'convohook': create it with `createdb convohook`, or fix the database name in "
        "CONVOHOOK_DATABASE_URL (postgresql:///convohook)"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db/convohook", "postgresql://app:***@db/convohook"),
        (
            "postgresql://app@db/convohook?sslmode=require&password=hunter2",
            "postgresql://app@db/convohook?sslmode=require&password=***",
        ),
        ("postgresql://app@db/convohook", "postgresql://app@db/convohook"),
        ("sqlite:///./convohook.db", "sqlite:///./convohook.db"),
    ],
)
def test_database_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
