"""The `convohook` commands of the public contract (DESIGN section 5), run as a user runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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

pytestmark = pytest.mark.e2e


async def simulate_dm(
    stack: Stack, *options: str, server: str | None = None
) -> tuple[int, str, str]:
    args = [
        "simulate",
        "dm",
        *options,
        "--server",
        server or stack.deployment.base_url,
        "--account-id",
        stack.account_id,
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


def test_migrate_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    env = cli_env(CONVOHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")

    first = run_cli("migrate", env=env)
    again = run_cli("migrate", env=env)

    assert first.returncode == 0, describe(first)
    assert first.stdout.startswith("applied: "), describe(first)
    assert "0001_initial" in first.stdout, describe(first)
    assert again.returncode == 0, describe(again)
    assert again.stdout.strip() == "database is up to date", describe(again)


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
