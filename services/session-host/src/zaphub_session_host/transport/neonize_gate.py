"""One Go client starting or stopping at a time in the process.

neonize 0.5.2 keeps every Go client of the process in global Go maps without a lock (goneonize/main.go:
`clients`, `eventChannel`, `StopSignal`). `Neonize()` writes them as a client starts and `Stop()` as it
stops; two writes at once kill the whole process ("fatal error: concurrent map writes"), and every
session of the host with it. Fifty offline clients started together crashed one run in three here:
the burst a host makes when it starts or takes over a dead host's sessions.

So a start holds the gate until its client is in the table (probed with a read that changes nothing),
and a stop for its whole call. Reads by other calls (a send looks its client up) are left as they are:
they race only with the few writes at the start of a start, not with each other.
"""

import asyncio
import logging
import time
import weakref
from typing import Any

from neonize._binder import gocode  # the Go library neonize loaded; nothing public reads the table
from neonize.aioze.client import NewAClient

log = logging.getLogger(__name__)

# One lock per event loop (tests run several loops in one process); the Go table is the process's.
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()
PROBE_EVERY = 0.002  # seconds; a start is in the table within a few ms
PROBE_FOR = 10.0  # seconds before a start that never shows up stops holding the others


async def start(client: NewAClient) -> "asyncio.Task[Any]":
    """`client.connect()`, returning once the Go client is in the table or its `Neonize()` returned."""
    async with _gate():
        task: asyncio.Task[Any] = await client.connect()
        deadline = time.monotonic() + PROBE_FOR
        while not task.done() and not await _in_table(client):
            if time.monotonic() > deadline:
                log.warning("a neonize client did not register in %.0f s; starting the next", PROBE_FOR)
                break
            await asyncio.sleep(PROBE_EVERY)
        return task


async def stop(client: NewAClient) -> None:
    """`client.stop()`; neonize would stop it again when the object is collected, outside the gate, so
    that is switched off."""
    async with _gate():
        await client.stop()
    client._stop_finalizer.detach()


def _gate() -> asyncio.Lock:
    return _gates.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def _in_table(client: NewAClient) -> bool:
    # SetProxyAddress with no settings only looks the client up: "" when found, an error otherwise.
    answer = await asyncio.to_thread(gocode.SetProxyAddress, client.uuid, None)
    return not answer
