"""One lifecycle for the API: a start that fails half-way closes what it opened, and a background task
that dies makes the API unready and stops its process, for the supervisor to restart it."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_devstack.ports import free_port
from zaphub_runtime.lifecycle import BackgroundTaskDied

ADMIN_KEY = "zh_admin_test_0123456789abcdef0123456789"


def settings(nats_url: str, database_url: str) -> ApiSettings:
    return ApiSettings(nats_url=nats_url, database_url=database_url, admin_key=ADMIN_KEY)


async def connections_to(database_url: str) -> int:
    """Connections to the test's database besides the one asking."""
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def broken(*args: Any) -> None:
    raise ConnectionError("this step fails")


@pytest.mark.parametrize(
    "failing_step",
    [
        "zaphub_runtime.bus.Bus.ensure_streams",  # the pool is open, migrated, and NATS connected
        "zaphub_api.store.webhooks.WebhookStore.reconcile",  # the outbox runs too
    ],
)
async def test_a_start_that_fails_half_way_closes_what_it_opened(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, database_url: str, failing_step: str
) -> None:
    """The start fails with the step's error and leaves no connection to PostgreSQL and no task running."""
    monkeypatch.setattr(failing_step, broken)
    app = create_app(settings(nats_url, database_url))
    before = asyncio.all_tasks()

    async def start() -> None:
        async with app.lifespan():  # the lifespan in this test's loop, so its tasks can be seen
            pass

    with pytest.raises(ExceptionGroup) as failed:  # Litestar's lifespan runs in a task group
        await start()
    assert failed.group_contains(ConnectionError, match="this step fails")
    await asyncio.sleep(0.1)  # cancelled tasks finish on the next turns of the loop
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert not left, left
    assert await connections_to(database_url) == 0


async def test_a_background_task_that_dies_makes_ready_503(
    monkeypatch: pytest.MonkeyPatch, nats_url: str, database_url: str
) -> None:
    """A consumer loop that ends (here: a bug when it binds) turns /ready to 503 naming it, and the
    lifespan's end reports the death."""

    async def bug(*args: Any) -> None:
        raise RuntimeError("a bug in the consumer loop")

    monkeypatch.setattr("zaphub_runtime.bus.Bus.ensure_consumer", bug)
    answers: list[Any] = []

    async def run() -> None:
        async with AsyncTestClient(app=create_app(settings(nats_url, database_url))) as client:
            for _ in range(100):
                ready = await client.get("/ready")
                if ready.status_code != 200:
                    break
                await asyncio.sleep(0.05)
            answers.append(ready)

    with pytest.raises(ExceptionGroup) as stopped:
        await run()
    assert answers[0].status_code == 503
    assert answers[0].json()["checks"]["tasks"].startswith("down:")
    assert stopped.group_contains(BackgroundTaskDied, match="projector|webhook-log")


# A background task that dies at once: the consumer loop cannot bind. Patched before the server
# starts; its worker process is forked from this one and keeps the patch.
DYING_API = """
import zaphub_runtime.bus
from zaphub_api.__main__ import main

async def bug(*args):
    raise RuntimeError("a bug in the consumer loop")

zaphub_runtime.bus.Bus.ensure_consumer = bug
main()
"""


async def test_the_api_process_exits_non_zero_when_a_background_task_dies(
    nats_url: str, database_url: str
) -> None:
    """The real entry point (granian and its worker process) exits by itself with a non-zero code."""
    env = {
        **os.environ,
        "ZAPHUB_NATS_URL": nats_url,
        "ZAPHUB_DATABASE_URL": database_url,
        "ZAPHUB_ADMIN_KEY": ADMIN_KEY,
        "ZAPHUB_API_PORT": str(free_port()),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DYING_API,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its worker too can be killed, should it not exit
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode not in (0, None), stderr.decode()[-2000:]
    assert b"background task" in stderr
