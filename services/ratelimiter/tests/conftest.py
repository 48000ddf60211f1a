"""Real servers and real ratelimiter processes for the ratelimiter's tests.

`nats_url` (a fresh JetStream per test) comes from the shared `zaphub_devstack.pytest_plugin`.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import nats
import pytest
from nats.aio.client import Client

BIN = Path(sys.executable).parent
SERVING = "ratelimiter serving"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


class Replicas:
    """`zaphub-ratelimiter` processes against one NATS server."""

    def __init__(self, nats_url: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.nats_url = nats_url
        self.log_dir = log_dir
        self.env = env or {}
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.starts: dict[int, int] = {}
        self._logs: list[BinaryIO] = []

    async def start(self, index: int) -> None:
        """Start replica `index` and wait until it serves."""
        self.starts[index] = self.starts.get(index, 0) + 1
        env = {
            **os.environ,
            "ZAPHUB_NATS_URL": self.nats_url,
            "ZAPHUB_INSTANCE_ID": f"rl-{index}",
            "ZAPHUB_LOG_LEVEL": "INFO",
            **self.env,
        }
        log = (self.log_dir / f"ratelimiter-{index}.log").open("ab")
        self.procs[index] = await asyncio.create_subprocess_exec(
            str(BIN / "zaphub-ratelimiter"), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self._logs.append(log)
        await self.wait_ready(index)

    async def kill(self, index: int) -> None:
        """SIGKILL: no drain, no goodbye."""
        proc = self.procs.pop(index)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def wait_ready(self, index: int, timeout: float = 30.0) -> None:
        """Until replica `index` says it serves its subjects."""
        path = self.log_dir / f"ratelimiter-{index}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[index].returncode is not None:
                raise RuntimeError(f"replica {index} exited: {path.read_text()[-3000:]}")
            if path.read_text().count(SERVING) > self.starts[index] - 1:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"replica {index} did not come up: {path.read_text()[-3000:]}")

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self.procs.clear()
        for log in self._logs:
            log.close()


@pytest.fixture
async def replicas(nats_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    group = Replicas(nats_url, tmp_path)
    yield group
    await group.stop_all()
