"""One Go client starting or stopping at a time in the process.

neonize 0.5.2 keeps every Go client of the process in global Go maps without a lock (goneonize/main.go:
`clients`, `eventChannel`, `StopSignal`). `Neonize()` writes them as a client starts and `Stop()` as it
stops; two writes at once kill the whole process ("fatal error: concurrent map writes"), and every
session of the host with it. Fifty offline clients started together crashed one run in three here:
the burst a host makes when it starts or takes over a dead host's sessions.

So a start holds the gate until its client is in the table (probed with a read that changes nothing),
and a stop while it deletes. Reads by other calls (a send looks its client up, each client's event loop
reads `eventChannel` once connected) are left as they are: they race only with the few writes of a
start or stop, not with each other, and only a lock in neonize can close that.
"""

import asyncio
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from neonize._binder import gocode  # the Go library neonize loaded; nothing public reads the table
from neonize.aioze.client import NewAClient

log = logging.getLogger(__name__)

PROBE_FIRST = 0.005  # seconds; a start is in the table within a few ms (its SQLite store opened)
PROBE_MAX = 0.05  # each probe is a read that could meet the write it waits for: few of them
PROBE_FOR = 10.0  # seconds before a start that never shows up stops holding the others

# One lock per event loop (tests run several loops in one process); the Go table is the process's.
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()
_stopping: "weakref.WeakKeyDictionary[NewAClient, asyncio.Lock]" = weakref.WeakKeyDictionary()
# Gated calls get a thread of their own: the default executor holds one thread per live client, and
# a probe queued behind them would hold the gate.
_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neonize-gate")


async def start(client: NewAClient) -> "asyncio.Task[Any]":
    """`client.connect()`, returning once the Go client is in the table or its `Neonize()` returned."""
    # neonize stops the client again when the object is collected, at any moment and outside the gate.
    client._stop_finalizer.detach()
    async with _gate():
        task: asyncio.Task[Any] = await client.connect()
        deadline = time.monotonic() + PROBE_FOR
        wait = PROBE_FIRST
        while not task.done():
            await asyncio.sleep(wait)
            if task.done() or await _in_table(client):
                break
            if time.monotonic() > deadline:
                log.warning("a neonize client did not register in %.0f s; starting the next", PROBE_FOR)
                break
            wait = min(wait * 2, PROBE_MAX)
        return task


async def stop(client: NewAClient) -> None:
    """Stop the Go client (safe when it is not in the table)."""
    async with _stopping.setdefault(client, asyncio.Lock()):
        # Disconnecting waits for a dial in progress (seconds when WhatsApp is unreachable): done
        # outside the gate, it holds no other start or stop. Go's Disconnect needs the client present.
        if await _in_table(client):
            await client.disconnect()
        async with _gate():
            await _run(gocode.Stop, client.uuid)


def _gate() -> asyncio.Lock:
    return _gates.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def _in_table(client: NewAClient) -> bool:
    # SetProxyAddress with no settings only looks the client up: "" when found, an error otherwise.
    return not await _run(gocode.SetProxyAddress, client.uuid, None)


async def _run(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_thread, function, *args)
