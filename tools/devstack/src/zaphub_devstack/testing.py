"""`Stack`: the real `zaphub-stack` supervisor as a subprocess, for end-to-end and kill-and-restart tests.

    async with Stack(tmp_path / "stack", env={"ZAPHUB_SESSION_HOSTS": "2"}) as stack:
        httpx.get(f"{stack.api_url}/ready")
        old = stack.kill("session-host-1")
        await stack.wait_restarted("session-host-1", old)

With `ZAPHUB_NATS_CLUSTER=3` in `env` the stack runs three nats-servers (processes `nats-n1`..`nats-n3`,
`stack.nats_nodes()`); connect with `nats.connect(stack.nats_servers)`.

Test stacks use the simulator transport unless `env` says otherwise, and a free API port.
"""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from zaphub_devstack.admin_key import FILE_NAME as ADMIN_KEY_FILE
from zaphub_devstack.ports import free_port
from zaphub_devstack.processes import die_with_parent
from zaphub_devstack.stackfile import NatsNode, StackFile
from zaphub_devstack.supervisor import HOLD_DIR, READY_MARKER

LOG_NAME = "stack.log"


class StackStartError(RuntimeError):
    """The stack did not print its READY line in time; the message holds the end of its log."""


class Stack:
    running: ClassVar[set["Stack"]] = set()  # for the pytest plugin's log tails of failed tests

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        api_port: int | None = None,
        services: Mapping[str, list[str]] | None = None,
    ) -> None:
        """`services` replaces the ZapHub services ({instance name: argv}), as ZAPHUB_STACK_SERVICES."""
        self.data_dir = data_dir.absolute()
        self.api_port = api_port or free_port()
        self.log_path = self.data_dir / LOG_NAME
        self._env = {
            **os.environ,
            "ZAPHUB_TRANSPORT": "sim",
            **(env or {}),
            "ZAPHUB_DATA_DIR": str(self.data_dir),
            "ZAPHUB_API_PORT": str(self.api_port),
            "PYTHONUNBUFFERED": "1",
        }
        if services is not None:
            self._env["ZAPHUB_STACK_SERVICES"] = json.dumps(dict(services))
        self._proc: subprocess.Popen[bytes] | None = None
        self._state: StackFile | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def admin_key(self) -> str:
        return self._env.get("ZAPHUB_ADMIN_KEY") or (self.data_dir / ADMIN_KEY_FILE).read_text().strip()

    @property
    def nats_url(self) -> str:
        """Every node's URL, comma-separated (what the services get as ZAPHUB_NATS_URL)."""
        return self.state().nats_url

    @property
    def nats_servers(self) -> list[str]:
        """Every node's URL, as `nats.connect(servers=...)` takes them."""
        return self.nats_url.split(",")

    def nats_nodes(self) -> list[NatsNode]:
        """The nats-servers (name, pid, client and monitoring URL) as stack.json lists them."""
        return self.state().nats_nodes

    @property
    def api_urls(self) -> list[str]:
        """One URL per API instance (`ZAPHUB_API_REPLICAS`), `api_url` first."""
        return self.state().api_urls or [self.api_url]

    @property
    def database_url(self) -> str:
        return self.state().database_url

    def state(self) -> StackFile:
        """stack.json as the supervisor last wrote it."""
        return StackFile.read(self.data_dir)

    def pids(self) -> dict[str, int]:
        """Process name (`api`, `dispatcher-1`, `nats`, `postgres`, ...) to its current pid."""
        return {name: entry.pid for name, entry in self.state().processes.items()}

    @property
    def pid(self) -> int | None:
        """The supervisor's pid."""
        return self._proc.pid if self._proc else None

    async def start(self, ready_within: float = 60.0) -> None:
        """Run the supervisor and wait for its READY line."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "zaphub_devstack"]
        seen = self._ready_count()  # the log is appended to across restarts of the same data dir
        with self.log_path.open("ab") as log:
            # Popen, not asyncio's: a Stack may outlive the event loop of the test that started it
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - fork+exec, returns at once
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(signal.SIGTERM),  # a killed test run leaves nothing behind
            )
        Stack.running.add(self)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self._ready_count() > seen:
                return
            if self._proc.poll() is not None:
                Stack.running.discard(self)
                raise StackStartError(f"zaphub-stack exited with {self._proc.returncode}\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        await self.stop()
        raise StackStartError(f"no '{READY_MARKER}' within {ready_within} s\n{self.log_tail()}")

    def _ready_count(self) -> int:
        if not self.log_path.exists():
            return 0
        marker = READY_MARKER.encode()
        return sum(1 for line in self.log_path.read_bytes().splitlines() if line.startswith(marker))

    def kill(self, name: str) -> int:
        """SIGKILL process `name` by its stack.json pid; the pid killed."""
        pid = self.pids()[name]
        os.kill(pid, signal.SIGKILL)
        return pid

    @contextlib.contextmanager
    def frozen(self, name: str) -> Iterator[None]:
        """Process `name` stopped (SIGSTOP) for the block, then resumed: commands pile up meanwhile."""
        pid = self.pids()[name]
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    @contextlib.asynccontextmanager
    async def down(self, name: str, sig: signal.Signals = signal.SIGKILL) -> AsyncIterator[int]:
        """Server `name` (`postgres`, `pgbouncer`, `nats`, `nats-n2`) stopped by `sig` and kept down for
        the block (the supervisor's hold file), then started again on its port and data; yields the pid."""
        hold = self.data_dir / HOLD_DIR / name
        hold.touch()
        pid = self.pids()[name]
        try:
            os.kill(pid, sig)
            while alive(pid):  # noqa: ASYNC110 - another process's exit, polled
                await asyncio.sleep(0.05)
            yield pid
        finally:
            hold.unlink(missing_ok=True)
        await self.wait_restarted(name, pid, within=60)

    async def wait_restarted(self, name: str, old_pid: int, within: float = 30.0) -> int:
        """Until stack.json shows `name` running with another pid than `old_pid`; the new pid."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid = self.pids().get(name)
            if pid is not None and pid != old_pid and alive(pid):
                return pid
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{name} (was pid {old_pid}) not restarted within {within} s\n{self.log_tail()}")

    async def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM the supervisor (it stops services, then servers); SIGKILL after `grace` s."""
        Stack.running.discard(self)
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self._proc.wait, grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return await asyncio.to_thread(self._proc.wait)

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no stack log)"
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> "Stack":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
