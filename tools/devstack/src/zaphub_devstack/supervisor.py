"""The dev stack: NATS and PostgreSQL, then every service, kept alive until Ctrl-C or SIGTERM."""

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
from zaphub_devstack.nats import EmbeddedNats
from zaphub_devstack.output import LineSink
from zaphub_devstack.ports import LOOPBACK
from zaphub_devstack.postgres import EmbeddedPostgres
from zaphub_devstack.readiness import wait_until_ready
from zaphub_devstack.services import stack_services
from zaphub_devstack.settings import StackSettings
from zaphub_devstack.stackfile import ProcessEntry, StackFile

READY_MARKER = "ZAPHUB READY"  # scripts wait for a line starting with this
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
        self.nats = EmbeddedNats(self.data_dir / "nats", settings.nats_port, self.logs_dir / "nats.log")
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres", settings.postgres_port, output=self.logs_dir / "postgres.log"
        )
        self.children: list[Child] = []
        self._server_restarts = {"nats": 0, "postgres": 0}
        self._state: StackFile | None = None
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with exclusive(self.data_dir):
            services = stack_services(self.settings)
            if "api" in services:
                _check_port_free(self.settings.api_port)
            key = admin_key.load_or_create(self.data_dir, self.settings.admin_key)
            say(f"data in {self.data_dir}")
            try:
                await asyncio.gather(self.nats.start(), self.postgres.start())
                database_url = await self.postgres.create_database(DATABASE)
                await self._serve(services, key, database_url)
            finally:
                await self._shutdown()

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
            "ZAPHUB_TRANSPORT": self.settings.transport,
            "PYTHONUNBUFFERED": "1",
        }
        self.children = [
            Child(name, argv, {**env, "ZAPHUB_INSTANCE_ID": name}, prefixed(name), say, self._write_state)
            for name, argv in services.items()
        ]
        self._write_state()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child.run()) for child in self.children]
            for name, server in (("nats", self.nats), ("postgres", self.postgres)):
                back = functools.partial(self._server_back, name)
                tasks.append(group.create_task(keep_server_alive(name, server, say, back)))
            tasks.append(group.create_task(self._announce_ready("api" in services, key)))
            await self._stop.wait()
            say("stopping services")
            await asyncio.gather(*(child.stop(STOP_GRACE) for child in self.children))
            for task in tasks:
                task.cancel()

    async def _announce_ready(self, has_api: bool, key: str) -> None:
        if has_api:
            try:
                await asyncio.wait_for(wait_until_ready(self.api_url), 60)
            except TimeoutError:
                say(f"still waiting for {self.api_url}/ready to answer 200 ...")
                await wait_until_ready(self.api_url)
        assert self._state is not None
        self._state.ready = True
        self._write_state()
        say(f"API        {self.api_url}")
        say(f"docs       {self.api_url}/docs")
        say(f"admin key  {key}  (kept in {self._state.admin_key_file})")
        say(f"NATS       {self.nats.url}")
        say(f"PostgreSQL {self._state.database_url}")
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
        for name, pid in (("nats", self.nats.pid), ("postgres", self.postgres.pid)):
            if pid is not None:
                processes[name] = ProcessEntry(pid, self._server_restarts[name])
        self._state.processes = processes
        self._state.write(self.data_dir)

    async def _shutdown(self) -> None:
        """Services first (they flush to the bus and the database), then the servers."""
        for child in self.children:
            await child.stop(STOP_GRACE)  # no-op for those already stopped
        say("stopping nats and postgres")
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
