"""Attack: a tenant opens an event stream and never reads it while its events flood in, so that the
API buffers for it without end, or holds the stream (a NATS subscription and one of the tenant's
stream slots) for ever. Defence: a stream whose reader falls a few hundred events behind is closed,
even while the server waits for the reader's socket; its slot is freed and the API's memory stays
bounded."""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from e2e.client import Tenant, new_tenant
from security.live_events import open_stream
from security.webhook_attacks import stack

from zaphub_devstack.testing import Stack

CAP = 1  # the stalled stream holds the tenant's only slot
TEXT = "x" * 3000  # each event carries it: the socket buffers fill after a few thousand
MEMORY_GROWTH = 200 * 1024 * 1024  # bytes the API may grow by under the flood; unbounded is many times it


@pytest.fixture(scope="module")
async def one_stream(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack(tmp_path_factory.mktemp("sse-slow"), ZAPHUB_SSE_MAX_PER_TENANT=str(CAP)) as started:
        yield started


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def api_memory(stack: Stack) -> int:
    """The API process and its workers."""
    pid = stack.pids()["api"]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(rss(p) for p in [pid, *map(int, children)] if Path(f"/proc/{p}").exists())


@contextlib.asynccontextmanager
async def stalled_stream(api_url: str, tenant: Tenant) -> AsyncIterator[socket.socket]:
    """GET /api/v1/events on a raw socket with a small receive buffer, read up to the first event
    line, then never read again."""
    url = urlsplit(api_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (url.hostname, url.port))
        auth = tenant.headers["Authorization"]
        request = f"GET /api/v1/events HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: {auth}\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b": connected" not in head:
            got = await asyncio.wait_for(loop.sock_recv(sock, 1024), 30)
            assert got, head
            head += got
        assert head.startswith(b"HTTP/1.1 200"), head
        yield sock
    finally:
        sock.close()


async def flood(tenant: Tenant, session_id: str, stop: asyncio.Event) -> int:
    """Inbound messages from a simulated contact, 10 at a time, until `stop`; how many."""
    count = 0

    async def one(n: int) -> None:
        body = {
            "action": "message",
            "from": "+5521987650001",
            "content": {"type": "text", "text": f"{n}{TEXT}"},
        }
        response = await tenant.http.post(
            f"/api/v1/sessions/{session_id}/simulate", json=body, headers=tenant.headers
        )
        assert response.status_code < 300, response.text

    while not stop.is_set():
        await asyncio.gather(*(one(count + i) for i in range(10)))
        count += 10
    return count


async def test_sse_slow_reader_is_dropped_and_its_slot_freed(one_stream: Stack) -> None:
    """Under a flood of events, a stream that is never read is closed by the server: the tenant's
    only slot opens again for a new stream, and the API's memory stays bounded."""
    async with httpx.AsyncClient(base_url=one_stream.api_url, timeout=30) as http:
        tenant = await new_tenant(http, one_stream.admin_key)
        session = await tenant.connected_session()
        before = api_memory(one_stream)
        async with stalled_stream(one_stream.api_url, tenant):
            assert (await http.get("/api/v1/events", headers=tenant.headers)).status_code == 429
            stop = asyncio.Event()
            flooding = asyncio.create_task(flood(tenant, session["id"], stop))
            started = time.monotonic()
            admitted_after = None
            try:
                while time.monotonic() - started < 45:  # dropped after ~10 s when measured
                    async with open_stream(http, tenant.headers) as fresh:
                        if fresh.status == 200:
                            admitted_after = round(time.monotonic() - started, 1)
                            break
                        assert fresh.status == 429
                    await asyncio.sleep(1)
            finally:
                stop.set()
                sent = await flooding
            grown = api_memory(one_stream) - before
        assert admitted_after is not None, f"the stalled stream kept its slot through {sent} events"
        assert grown < MEMORY_GROWTH, f"the API grew by {grown} bytes over {sent} events"
