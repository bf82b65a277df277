"""End-to-end fixtures: one real deployment for the session, and per test a channel, a webhook
and a verifying receiver of its own (so tests never see each other's customers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from browser import launched
from e2e_support import Deployment, Service, Stack, deploy, open_stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _service_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, show what the convohook processes logged while it ran."""
    marks = {id(s): s.log_size() for s in Service.started}
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for service in Service.started:
            logged = service.log(since=marks.get(id(service), 0))
            if logged:
                print(f"----- convohook {service.name} ({service.log_path}) during the test -----")
                print(logged)


@pytest.fixture(scope="session")
def e2e_postgres_url(postgres_template: str) -> Iterator[str]:
    """A PostgreSQL database of its own for the session's deployment, cloned from the migrated
    template of tests/conftest.py (which skips, outside CI, when PostgreSQL is unreachable)."""
    import psycopg

    admin_url = os.environ.get(
        "CONVOHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"convohook_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    yield admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One running deployment per database backend, shared by every test of the session."""
    backend = request.param
    database_url = request.getfixturevalue("e2e_postgres_url") if backend == "postgresql" else None
    workdir = tmp_path_factory.mktemp(f"deployment-{backend}")
    with deploy(workdir, database_url=database_url) as running:
        yield running


@pytest.fixture
async def stack(deployment: Deployment) -> AsyncIterator[Stack]:
    async with open_stack(deployment) as opened:
        yield opened


@pytest.fixture
def guarded_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A second server, started without CONVOHOOK_ALLOW_PRIVATE_TARGETS."""
    # Its Graph API URL is never asked: no customer writes to it.
    graph_url = "http://127.0.0.1:9/v24.0"
    with deploy(tmp_path / "guarded", allow_private_targets=False, graph_url=graph_url) as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Any]:
    """One Chromium for every browser test of the session (each opens its own context). Its
    tests, and their async fixtures, run in the session's event loop, where it lives."""
    async with launched() as browser:
        yield browser
