"""What the webhook and live-event attack tests share: stacks on the simulator, a tenant creating a
webhook, the servers an attacker points webhooks at, and reading the delivery log."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from e2e.client import Tenant, eventually

from zaphub_devstack.testing import Stack

FAST_RETRIES = {
    "ZAPHUB_WEBHOOK_RETRY_BASE_DELAY": "0.2",
    "ZAPHUB_WEBHOOK_RETRY_MAX_DELAY": "1",
    "ZAPHUB_SIM_PAIR_DELAY": "0.2",
}


@contextlib.asynccontextmanager
async def stack(
    data_dir: Path, services: Mapping[str, list[str]] | None = None, **env: str
) -> AsyncIterator[Stack]:
    settings = {"ZAPHUB_TRANSPORT": "sim", **FAST_RETRIES, **env}
    async with Stack(data_dir, env=settings, services=services) as started:
        yield started


async def create_webhook(tenant: Tenant, url: str, events: list[str] | None = None) -> httpx.Response:
    return await tenant.http.post(
        "/api/v1/webhooks", json={"url": url, "events": events or ["*"]}, headers=tenant.headers
    )


PUBLIC_URL = "https://1.1.1.1/hook"  # valid and public; no event is ever sent to it in these tests


def refused_on_url(response: httpx.Response) -> bool:
    return response.status_code == 422 and [e["field"] for e in response.json()["errors"]] == ["url"]


async def refused_everywhere(tenant: Tenant, urls: list[str]) -> None:
    """Each URL answers 422 on `url` at create, and when a valid webhook is changed to it."""
    valid = await create_webhook(tenant, PUBLIC_URL)
    assert valid.status_code == 201, valid.text
    path = f"/api/v1/webhooks/{valid.json()['id']}"
    for url in urls:
        assert refused_on_url(await create_webhook(tenant, url)), url
        assert refused_on_url(await tenant.http.patch(path, json={"url": url}, headers=tenant.headers)), url
    listed = (await tenant.http.get("/api/v1/webhooks", headers=tenant.headers)).json()
    assert [h["url"] for h in listed] == [PUBLIC_URL]
    assert (await tenant.http.delete(path, headers=tenant.headers)).status_code == 204


async def attempts(tenant: Tenant, webhook_id: str, least: int = 1) -> list[dict[str, Any]]:
    """The attempts of the webhook's deliveries, once there are at least `least` of them."""

    async def logged() -> list[dict[str, Any]] | None:
        response = await tenant.http.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=tenant.headers)
        assert response.status_code == 200, response.text
        found = [a for d in response.json() for a in d["attempt_log"]]
        return found if len(found) >= least else None

    return await eventually(logged, 60, f"{least} attempt(s) in the delivery log")


class Listener:
    """A TCP server on `host` that counts connections and does what `serve` does with each."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    async def __aenter__(self) -> "Listener":
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._held:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.add(writer)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._held.discard(writer)
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()


class BlackHole(Listener):
    """Accepts the connection, then never reads nor answers."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()


class DripFeed(Listener):
    """Answers a status line, then one byte of headers every half second, forever, and never a body."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while True:
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.write(b"a")


class Redirector(Listener):
    """Answers every request with a 302 to `location`."""

    def __init__(self, location: str, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.location = location

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
