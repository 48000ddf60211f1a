"""The dev stack: NATS (one node or a cluster) and PostgreSQL, then every service, kept alive until
Ctrl-C or SIGTERM."""

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from zaphub_devstack import admin_key
from zaphub_devstack.children import Child, keep_server_alive
from zaphub_devstack.errors import ServerError
from zaphub_devstack.nats import EmbeddedNats, NatsCluster
from zaphub_devstack.output import LineSink
from zaphub_devstack.pgbouncer import EmbeddedPgBouncer
from zaphub_devstack.ports import LOOPBACK, free_port
from zaphub_devstack.postgres import EmbeddedPostgres
from zaphub_devstack.readiness import wait_until_ready
from zaphub_devstack.server import ChildServer
from zaphub_devstack.services import is_api, stack_services
from zaphub_devstack.settings import StackSettings
from zaphub_devstack.stackfile import NatsNode, ProcessEntry, StackFile

READY_MARKER = "ZAPHUB READY"  # scripts wait for a line starting with this
HOLD_DIR = "hold"  # <data>/hold/<server>: while the file exists, that server is not restarted
DATABASE = "zaphub"
STOP_GRACE = 10.0


def console_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def prefixed(name: str) -> LineSink:
    return lambda line: console_line(f"[{name}] {line}")


say = prefixed("stack")


class StackError(RuntimeError):
    """The stack cannot start; the message says why and what to do."""


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold `<data>/stack.lock`: two supervisors on one data dir would corrupt each other's servers."""
    with (data_dir / "stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                f"another zaphub-stack is running on {data_dir}; stop it or set ZAPHUB_DATA_DIR"
            ) from None
        yield


def _check_port_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise StackError(f"port {port} is in use; set ZAPHUB_API_PORT to a free port") from None


class Supervisor:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.absolute()
        self.api_url = f"http://{LOOPBACK}:{settings.api_port}"
        # Server logs go to files: their banners would drown the services' lines.
        self.logs_dir = self.data_dir / "logs"
        self.nats = NatsCluster(
            self.data_dir / "nats", settings.nats_cluster, settings.nats_port, logs_dir=self.logs_dir
        )
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres", settings.postgres_port, output=self.logs_dir / "postgres.log"
        )
        self.api_ports: dict[str, int] = {}
        self.children: list[Child] = []
        self._servers: dict[str, ChildServer] = {self._process_name(n): n for n in self.nats.nodes}
        self._servers["postgres"] = self.postgres
        self.pgbouncer: EmbeddedPgBouncer | None = None
        self._server_restarts = dict.fromkeys(self._servers, 0)
        self._state: StackFile | None = None
        self._stop = asyncio.Event()

    def _process_name(self, node: EmbeddedNats) -> str:
        """`nats` alone, `nats-n1`.. in a cluster: the names stack.json and `Stack.kill` use."""
        return f"nats-{node.name}" if self.nats.clustered else "nats"

    def request_stop(self) -> None:
        self._stop.set()

    def _assign_api_ports(self, services: dict[str, list[str]]) -> None:
        """The first API instance keeps `api_port` (the URL the README gives), the others get free ports."""
        for name in filter(is_api, services):
            port = self.settings.api_port
            while port in self.api_ports.values():
                port = free_port()
            _check_port_free(port)
            self.api_ports[name] = port

    async def run(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with exclusive(self.data_dir):
            services = stack_services(self.settings)
            if self.settings.replicas > self.settings.nats_cluster:
                raise StackError(
                    f"ZAPHUB_STREAM_REPLICAS={self.settings.replicas} needs as many NATS nodes;"
                    f" set ZAPHUB_NATS_CLUSTER={self.settings.replicas}"
                )
            self._assign_api_ports(services)
            key = admin_key.load_or_create(self.data_dir, self.settings.admin_key)
            say(f"data in {self.data_dir}")
            try:
                await asyncio.gather(self.nats.start(), self.postgres.start())
                database_url = await self.postgres.create_database(DATABASE)
                if self.settings.db_pooler == "pgbouncer":
                    database_url = await self._start_pgbouncer()
                await self._serve(services, key, database_url)
            finally:
                await self._shutdown()

    async def _start_pgbouncer(self) -> str:
        """PgBouncer in front of PostgreSQL; the database URL the services get instead."""
        self.pgbouncer = EmbeddedPgBouncer(
            self.data_dir / "pgbouncer", LOOPBACK, self.postgres.port, output=self.logs_dir / "pgbouncer.log"
        )
        await self.pgbouncer.start()
        await self.pgbouncer.check(DATABASE)
        self._servers["pgbouncer"] = self.pgbouncer
        self._server_restarts["pgbouncer"] = 0
        return self.pgbouncer.url_for(DATABASE)

    async def _serve(self, services: dict[str, list[str]], key: str, database_url: str) -> None:
        self._state = StackFile(
            pid=os.getpid(),
            api_url=self.api_url,
            docs_url=f"{self.api_url}/docs",
            nats_url=self.nats.url,
            database_url=database_url,
            admin_key_file=str(self.data_dir / admin_key.FILE_NAME),
        )
        env = {
            **os.environ,
            "ZAPHUB_NATS_URL": self.nats.url,
            "ZAPHUB_DATABASE_URL": database_url,
            "ZAPHUB_DATA_DIR": str(self.data_dir),
            "ZAPHUB_ADMIN_KEY": key,
            "ZAPHUB_API_PORT": str(self.settings.api_port),
            "ZAPHUB_STREAM_REPLICAS": str(self.settings.replicas),
            "ZAPHUB_TRANSPORT": self.settings.transport,
            "PYTHONUNBUFFERED": "1",
        }
        self._state.api_urls = [f"http://{LOOPBACK}:{port}" for port in self.api_ports.values()]
        self.children = [
            Child(name, argv, self._instance_env(env, name), prefixed(name), say, self._write_state)
            for name, argv in services.items()
        ]
        self._write_state()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child.run()) for child in self.children]
            (self.data_dir / HOLD_DIR).mkdir(exist_ok=True)
            for name, server in self._servers.items():
                back = functools.partial(self._server_back, name)
                hold = self.data_dir / HOLD_DIR / name
                tasks.append(group.create_task(keep_server_alive(name, server, say, back, hold)))
            tasks.append(group.create_task(self._announce_ready(key)))
            await self._stop.wait()
            say("stopping services")
            await asyncio.gather(*(child.stop(STOP_GRACE) for child in self.children))
            for task in tasks:
                task.cancel()

    def _instance_env(self, env: dict[str, str], name: str) -> dict[str, str]:
        instance = {**env, "ZAPHUB_INSTANCE_ID": name}
        if name in self.api_ports:
            instance["ZAPHUB_API_PORT"] = str(self.api_ports[name])
        return instance

    async def _announce_ready(self, key: str) -> None:
        assert self._state is not None
        for url in self._state.api_urls:
            try:
                await asyncio.wait_for(wait_until_ready(url), 60)
            except TimeoutError:
                say(f"still waiting for {url}/ready to answer 200 ...")
                await wait_until_ready(url)
        self._state.ready = True
        self._write_state()
        say(f"API        {self.api_url}")
        for url in self._state.api_urls[1:]:
            say(f"API        {url}")
        say(f"docs       {self.api_url}/docs")
        say(f"admin key  {key}  (kept in {self._state.admin_key_file})")
        for node in self.nats.nodes:
            say(f"NATS       {node.url}" + (f"  ({node.name})" if self.nats.clustered else ""))
        say(f"PostgreSQL {self._state.database_url}" + (" (PgBouncer)" if self.pgbouncer else ""))
        say(f"server logs in {self.logs_dir}; Ctrl-C stops everything")
        console_line(f"{READY_MARKER} api={self.api_url}")

    def _server_back(self, name: str) -> None:
        self._server_restarts[name] += 1
        self._write_state()

    def _write_state(self) -> None:
        if self._state is None:
            return
        processes = {
            child.name: ProcessEntry(child.pid, child.restarts) for child in self.children if child.pid
        }
        for name, server in self._servers.items():
            if server.pid is not None:
                processes[name] = ProcessEntry(server.pid, self._server_restarts[name])
        self._state.processes = processes
        self._state.nats_nodes = [
            NatsNode(node.name, node.pid, node.url, node.monitor_url) for node in self.nats.nodes
        ]
        self._state.write(self.data_dir)

    async def _shutdown(self) -> None:
        """Services first (they flush to the bus and the database), then the servers."""
        for child in self.children:
            await child.stop(STOP_GRACE)  # no-op for those already stopped
        say("stopping the servers")
        if self.pgbouncer is not None:
            await self.pgbouncer.stop()
        await asyncio.gather(self.nats.stop(), self.postgres.stop(), return_exceptions=True)
        (self.data_dir / "stack.json").unlink(missing_ok=True)
        say("stopped")


async def run_stack(settings: StackSettings) -> int:
    supervisor = Supervisor(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        await supervisor.run()
    except (StackError, ServerError) as exc:
        say(f"error: {exc}")
        return 1
    return 0
