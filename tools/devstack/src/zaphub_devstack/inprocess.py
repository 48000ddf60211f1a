"""For tests that run a service's `run` in their own event loop: wait for what it does, and find what it
left behind once it returned (tasks still running, such as an unclosed NATS connection's, or a port
still listening)."""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from zaphub_devstack.ports import LOOPBACK

T = TypeVar("T")


async def eventually(check: Callable[[], T], what: str, within: float = 10.0, step: float = 0.02) -> T:
    """What `check()` returns once it is truthy; fail naming `what` after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(step)
    return result


async def tasks_left(before: set[asyncio.Task[Any]], settle: float = 1.0) -> list[str]:
    """Names of the tasks started since `before` that still run after at most `settle` seconds (a
    cancelled task needs a turn of the loop to end)."""
    deadline = asyncio.get_running_loop().time() + settle
    while True:
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        if not left or asyncio.get_running_loop().time() > deadline:
            return sorted(t.get_name() for t in left)
        await asyncio.sleep(0.02)


async def listening(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts connections on `port`."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True
