"""Creating and dropping PostgreSQL databases by URL, for the stack and for per-test databases."""

import contextlib
import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # no quoting games: plain identifiers only


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (query parameters kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"unsupported database name {name!r}")
    return name


async def create_database(server_url: str, name: str) -> str:
    """Create `name` on the server of `server_url` unless it exists; the new database's URL."""
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # created concurrently
                await conn.execute(f'CREATE DATABASE "{_checked(name)}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop `name`, disconnecting whoever still uses it."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
    finally:
        await conn.close()
