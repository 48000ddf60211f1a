"""Spawning server and service processes: output to a file or a line callback, death with the parent."""

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import pwd
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from zaphub_devstack.output import STREAM_LIMIT, Output, open_log, pump_lines

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to send `sig` to the child when its parent dies; None elsewhere.

    Keeps a SIGKILLed supervisor or test run from leaving servers behind that hold ports and data dirs.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


@dataclass
class Spawned:
    proc: asyncio.subprocess.Process
    pump: asyncio.Task[None] | None  # forwards piped output; None when it goes to a file

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    async def wait(self) -> int:
        """The exit code, once the process has exited and its output is drained."""
        exited = asyncio.ensure_future(self.proc.wait())
        # asyncio's wait() returns only once the output pipes close too, and a surviving grandchild
        # (an HTTP server's worker, a database backend) keeps them open: watch the exit code instead,
        # then end the process group it leads so nothing outlives it holding its port or pipes.
        while not exited.done():
            if self.proc.returncode is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            await asyncio.wait({exited}, timeout=0.2)
        code = exited.result()
        if self.pump is not None:
            await self.pump
        return code

    def send(self, sig: signal.Signals) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):  # exited between the check and the signal
                self.proc.send_signal(sig)

    async def stop(self, sig: signal.Signals, grace: float) -> int:
        """Send `sig`, and SIGKILL if the process is still there after `grace` seconds."""
        self.send(sig)
        try:
            return await asyncio.wait_for(asyncio.shield(self.wait()), grace)
        except TimeoutError:
            self.send(signal.SIGKILL)
            return await self.wait()


async def spawn(
    argv: list[str],
    output: Output,
    *,
    parent_death_signal: signal.Signals = signal.SIGTERM,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: pwd.struct_passwd | None = None,
) -> Spawned:
    """Start `argv` with stdin closed and stdout+stderr going to `output`."""
    log = open_log(output) if isinstance(output, Path) else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log or asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=STREAM_LIMIT,
            preexec_fn=die_with_parent(parent_death_signal),
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only; it stops us in order
            env=env,
            cwd=cwd,
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    finally:
        if log is not None:
            log.close()
    if not isinstance(output, Path):
        assert proc.stdout is not None
        return Spawned(proc, asyncio.create_task(pump_lines(proc.stdout, output)))
    return Spawned(proc, None)
