"""pytest fixtures on real servers: NATS with JetStream, PostgreSQL, and the whole stack.

Loaded for the whole workspace by `-p zaphub_devstack.pytest_plugin` in the root pyproject.
`NATS_URL` / `DATABASE_URL` in the environment point the fixtures at existing servers instead.

- `nats_server` (session): one embedded nats-server; `nats_url` (test): a fresh one per test (~30 ms),
  so streams, consumers and KV buckets never leak between tests.
- `postgres_server` (session): one embedded PostgreSQL, fsync off; `database_url` (test): a fresh
  database on it, dropped afterwards.
- `pgbouncer` (session): Debian's PgBouncer in transaction pooling in front of `postgres_server`;
  `pooled_database_url` (test): a fresh database reached through it.
- `run_stack` (test): `await run_stack(ZAPHUB_SESSION_HOSTS="2")` runs the real `zaphub-stack`.
- `browser` (session), `page` and `outside_requests` (test): headless Chromium kept on this machine,
  from zaphub_devstack.browser.
- `require_program("pgbouncer", "pgbouncer")`: tests of programs that are not wheels skip with how to
  install them, and fail instead under `CI=true`.
"""

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from zaphub_devstack.databases import create_database, drop_database, with_database
from zaphub_devstack.nats import EmbeddedNats
from zaphub_devstack.pgbouncer import EmbeddedPgBouncer
from zaphub_devstack.postgres import EmbeddedPostgres
from zaphub_devstack.testing import Stack

pytest_plugins = ["zaphub_devstack.browser"]


@dataclass(frozen=True)
class ExternalServer:
    """A server the fixtures were pointed at (`NATS_URL`, `DATABASE_URL`) rather than started."""

    url: str


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nats_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedNats | ExternalServer]:
    if url := os.environ.get("NATS_URL"):
        yield ExternalServer(url)
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-session") / "store")
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url  # shared: tests must use unique stream and subject names themselves
        return
    server = EmbeddedNats(tmp_path / "nats" / "store")
    await server.start()
    yield server.url
    await server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedPostgres | ExternalServer]:
    if url := os.environ.get("DATABASE_URL"):
        yield ExternalServer(url)
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres-session") / "data", durable=False)
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(postgres_server: EmbeddedPostgres | ExternalServer) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = await create_database(postgres_server.url, name)
    yield url
    await drop_database(postgres_server.url, name)


def require_program(program: str, package: str) -> str:
    """The path of `program`; when missing, skip the test saying how to install it, or fail it under
    `CI=true` (CI must run every test)."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = f"{program} is not installed: apt-get install {package} (or your system's package) runs this"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pgbouncer(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: EmbeddedPostgres | ExternalServer
) -> AsyncIterator[EmbeddedPgBouncer]:
    require_program("pgbouncer", "pgbouncer")
    upstream = urlsplit(postgres_server.url)
    server = EmbeddedPgBouncer(
        tmp_path_factory.mktemp("pgbouncer"), upstream.hostname or "127.0.0.1", upstream.port or 5432
    )
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def pooled_database_url(database_url: str, pgbouncer: EmbeddedPgBouncer) -> str:
    """`database_url`'s database, through PgBouncer."""
    return with_database(pgbouncer.url_for("postgres"), urlsplit(database_url).path.lstrip("/"))


class StackFactory(Protocol):
    async def __call__(self, services: Mapping[str, list[str]] | None = None, **env: str) -> Stack: ...


@pytest_asyncio.fixture(loop_scope="session")
async def run_stack(tmp_path: Path) -> AsyncIterator[StackFactory]:
    stacks: list[Stack] = []

    async def start(services: Mapping[str, list[str]] | None = None, **env: str) -> Stack:
        stack = Stack(tmp_path / f"stack-{len(stacks) + 1}", env=env, services=services)
        stacks.append(stack)
        await stack.start()
        return stack

    yield start
    for stack in stacks:
        await stack.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the end of every running stack's log to a failed test's report."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for stack in list(Stack.running):
            report.sections.append((f"zaphub-stack log ({stack.log_path})", stack.log_tail()))
    return report
