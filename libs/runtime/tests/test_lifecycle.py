"""One lifecycle for every service: half-way starts close what they opened, failing stop steps skip
nothing, and a background task that dies fails the service."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from zaphub_runtime.lifecycle import BackgroundTaskDied, Lifecycle


async def test_a_start_that_fails_half_way_closes_what_it_opened() -> None:
    """What was opened before the failing step is closed, in reverse order, and the error surfaces."""
    closed: list[str] = []

    @contextlib.asynccontextmanager
    async def resource(name: str) -> AsyncIterator[str]:
        try:
            yield name
        finally:
            closed.append(name)

    async def start() -> None:
        async with Lifecycle("api") as life:
            await life.enter(resource("pool"))
            life.on_close(lambda: closed.append("bus"))
            life.spawn(asyncio.sleep(3600), "outbox")
            raise ConnectionError("NATS unreachable")

    with pytest.raises(ConnectionError):
        await start()
    assert closed == ["bus", "pool"]


async def test_a_failing_shutdown_step_does_not_skip_the_others() -> None:
    """Every step runs although one raises."""
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("already closed")

    async with Lifecycle("dispatcher") as life:
        life.on_close(lambda: ran.append("first"))
        life.on_close(broken)
        life.on_close(lambda: ran.append("last"))
    assert ran == ["last", "broken", "first"]


async def test_a_background_task_that_dies_fails_the_service() -> None:
    """The task's death sets stop, marks the service unhealthy, and leaving the block raises."""
    life = Lifecycle("api")

    async def dies() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("projector loop died")

    async def run() -> None:
        async with life:
            life.spawn(dies(), "projector")
            await asyncio.wait_for(life.stop.wait(), 5)

    with pytest.raises(BackgroundTaskDied, match="projector"):
        await run()
    assert not life.healthy
    assert life.failure == "projector"


async def test_tasks_that_end_because_of_stop_are_not_failures() -> None:
    """A task that returns after stop is set is the normal end of a service."""
    async with Lifecycle("host") as life:
        stop = life.stop

        async def follow() -> None:
            await stop.wait()

        life.spawn(follow(), "follower")
        life.stop.set()
    assert life.healthy
