"""Versioned SQL migrations (`migrations/NNNN_name.sql`), applied in order on start under an advisory lock."""

import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)
LOCK_ID = 0x5A4150  # any constant: serializes API replicas that start at once


def _migrations() -> list[tuple[int, str, str]]:
    files = resources.files("zaphub_api.store").joinpath("migrations")
    found = []
    for entry in files.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply what is missing, all in one transaction; returns the names applied.

    The lock is a transaction's (`pg_advisory_xact_lock`): behind PgBouncer in transaction pooling a
    session lock could be taken on one server connection and released on another, and stay held.
    """
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied.append(name)
            log.info("migration applied", extra={"fields": {"migration": name}})
    return applied
