"""EmbeddedPostgres and the database fixtures."""

import os
from pathlib import Path

import asyncpg
import psutil
import pytest

from zaphub_devstack.postgres import SYSTEM_USER, EmbeddedPostgres


async def test_committed_rows_survive_a_kill_and_a_new_server_on_the_same_dir(tmp_path: Path) -> None:
    """A durable cluster keeps committed data across SIGKILL and across a fresh EmbeddedPostgres."""
    server = EmbeddedPostgres(tmp_path / "pg")
    await server.start()
    try:
        url = await server.create_database("zaphub")
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        await conn.close()
        await server.kill()
    finally:
        await server.stop()

    again = EmbeddedPostgres(tmp_path / "pg")
    async with again:
        conn = await asyncpg.connect(again.url_for("zaphub"))
        assert await conn.fetchval("SELECT x FROM kept") == 42
        await conn.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs the unprivileged system user")
async def test_postgres_started_by_root_runs_as_an_unprivileged_user(
    postgres_server: EmbeddedPostgres,
) -> None:
    """PostgreSQL refuses root, so the server runs as the stack's system user."""
    if postgres_server.pid is None:
        pytest.skip("DATABASE_URL points at an external server")
    assert psutil.Process(postgres_server.pid).username() == SYSTEM_USER


async def test_database_url_is_a_fresh_empty_database(database_url: str) -> None:
    """Each test gets its own database, with no tables of other tests."""
    conn = await asyncpg.connect(database_url)
    tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    await conn.execute("CREATE TABLE mine (x int)")
    await conn.close()
    assert tables == 0


async def test_another_test_does_not_see_the_first_tests_tables(database_url: str) -> None:
    """Tables created by the previous test are not in this database."""
    conn = await asyncpg.connect(database_url)
    assert await conn.fetchval("SELECT to_regclass('public.mine')") is None
    await conn.close()
