"""EmbeddedPgBouncer: transaction pooling in front of the embedded PostgreSQL, and why asyncpg then
needs `statement_cache_size=0` (ZAPHUB_DB_POOLER=pgbouncer)."""

import asyncio

import asyncpg
import pytest


async def _many_queries(url: str, **options: int) -> None:
    """Four clients at once: in transaction pooling each query may run on another server connection."""
    pools = [await asyncpg.create_pool(url, min_size=1, max_size=1, **options) for _ in range(4)]
    try:

        async def queries(pool: asyncpg.Pool, n: int) -> None:
            for i in range(25):
                assert await pool.fetchval("SELECT $1::int + $2::int", n, i) == n + i

        await asyncio.gather(*(queries(pool, n) for n, pool in enumerate(pools)))
    finally:
        for pool in pools:
            await pool.close()


async def test_without_a_statement_cache_queries_go_through_transaction_pooling(
    pooled_database_url: str,
) -> None:
    """With asyncpg's statement cache off, many clients share few server connections without error."""
    await _many_queries(pooled_database_url, statement_cache_size=0)


async def test_with_the_statement_cache_transaction_pooling_breaks_prepared_statements(
    pooled_database_url: str,
) -> None:
    """The control: a cached prepared statement meets a server connection that never saw it."""
    with pytest.raises(asyncpg.PostgresError, match="prepared statement"):
        await _many_queries(pooled_database_url)
