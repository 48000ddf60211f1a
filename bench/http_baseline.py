"""The HTTP baseline: a bare ASGI app (one route answering 202 with a JSON body) on the API's server,
granian, with its settings, loaded by the same generator on the same connections as the API's accepts.

    python -m bench.http_baseline <port>

The API's accept rate over this one says how much of the machine's HTTP capacity the framework, the
database and the bus leave; it moves with the machine far less than the accept rate itself.
"""

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from zaphub_devstack.ports import free_port

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# About the size of the API's 202 (a message id and its status).
ACCEPTED = b'{"id":"6f1c2a52-8a56-4a1e-9a55-0c7c3c1f3a10","status":"accepted","seq":1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ACCEPTED)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Every request is read to its end and answered 202; lifespan events are acknowledged."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ACCEPTED})


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[str]:
    """The bare app under granian in a process of its own; yields its base URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.http_baseline", str(port), stdout=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await http.post("/")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.returncode is not None:
                        raise
                    await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        await proc.wait()


def main(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    # As zaphub_api.__main__ runs the API (one worker, the default of ZAPHUB_API_WORKERS).
    Granian(
        "bench.http_baseline:app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=1,
        log_access=False,
        log_level=LogLevels.warning,
    ).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]))
