"""`EmbeddedPgBouncer`: Debian's `pgbouncer` in transaction pooling in front of an `EmbeddedPostgres`.

It is not a wheel: `apt-get install pgbouncer` provides it. The ini and user list are generated into
`run_dir`; every database of the upstream server is served under its own name (`* = ...`).
"""

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path

import asyncpg

from zaphub_devstack.errors import ServerError
from zaphub_devstack.output import Output
from zaphub_devstack.ports import LOOPBACK, free_port
from zaphub_devstack.postgres import SUPERUSER, open_path_to, unprivileged_user
from zaphub_devstack.processes import spawn
from zaphub_devstack.server import ChildServer

INSTALL_HINT = "apt-get install pgbouncer"
# How the tests pool; infra/k8s/pgbouncer.yaml says the same (tests/infra checks it). A query waiting
# for a server connection fails after `query_wait_timeout` s, below the API's ZAPHUB_DB_TIMEOUT, so the
# API answers 503 in time; a failed server login is retried after a second, not the default 15.
POOLING = {
    "pool_mode": "transaction",
    "query_wait_timeout": "3",
    "server_connect_timeout": "3",
    "server_login_retry": "1",
}


def pgbouncer_binary() -> Path | None:
    """`pgbouncer` on PATH or where Debian puts it (`/usr/sbin`, often not on a user's PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


class EmbeddedPgBouncer(ChildServer):
    """PgBouncer on 127.0.0.1:`port` (0: a free one, kept across restarts) for the PostgreSQL server at
    `upstream_host:upstream_port`.

    Pooling as `POOLING` says: transactions, and short waits.
    """

    NAME = "pgbouncer"
    STOP_SIGNAL = signal.SIGINT  # safe shutdown: finish the transactions under way, then exit

    def __init__(
        self,
        run_dir: Path,
        upstream_host: str,
        upstream_port: int,
        port: int = 0,
        *,
        pool_size: int = 20,
        output: Output | None = None,
    ) -> None:
        self.run_dir = run_dir.absolute()
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port
        self.pool_size = pool_size
        self._output: Output = output or self.run_dir / "pgbouncer.log"
        self._user = unprivileged_user()

    def url_for(self, database: str) -> str:
        if not self.port:
            raise ServerError("pgbouncer has not been started yet")
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def _write_config(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        users = self.run_dir / "userlist.txt"
        users.write_text(f'"{SUPERUSER}" ""\n')
        ini = self.run_dir / "pgbouncer.ini"
        ini.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={self.upstream_host} port={self.upstream_port}",
                    "[pgbouncer]",
                    f"listen_addr = {LOOPBACK}",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {users}",
                    *(f"{name} = {value}" for name, value in POOLING.items()),
                    "max_client_conn = 1000",
                    f"default_pool_size = {self.pool_size}",
                    "ignore_startup_parameters = extra_float_digits",
                    "",
                ]
            )
        )
        if self._user is not None:
            open_path_to(self.run_dir)
            for path in (self.run_dir, users, ini):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return ini

    async def start(self, ready_within: float | None = None) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise ServerError(f"pgbouncer is not installed ({INSTALL_HINT})")
        ready_within = self.READY_WITHIN if ready_within is None else ready_within
        if not self.port:
            self.port = free_port()
        ini = self._write_config()
        self._process = await spawn([str(binary), str(ini)], self._output, run_as=self._user)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if not self._process.running:
                raise ServerError(f"pgbouncer exited with {await self._process.wait()} during start")
            if await self._listening():
                return
            await asyncio.sleep(0.05)
        await self.kill()
        raise ServerError(f"pgbouncer not listening after {ready_within} s")

    async def _listening(self) -> bool:
        try:
            _, writer = await asyncio.open_connection(LOOPBACK, self.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async def check(self, database: str) -> None:
        """One query through PgBouncer to the upstream `database`, in transaction pooling."""
        conn = await asyncpg.connect(self.url_for(database), statement_cache_size=0, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
