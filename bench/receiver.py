"""Local webhook endpoints for the benchmarks: a receiver that checks each POST's signature and keeps
its arrival time, and a black hole that holds every connection and never answers."""

import asyncio
import time
from dataclasses import dataclass, field

from zaphub_dispatcher.webhook_signing import verify


@dataclass
class Receiver:
    """Webhook `n`'s URL is `url(n)`, signed with `secrets[n]`. Answers 200 on keep-alive connections,
    as fast as it can: it parses the head, verifies the signature and keeps (time, webhook, event id)."""

    secrets: dict[str, str] = field(default_factory=dict)
    arrivals: list[tuple[float, str, str]] = field(default_factory=list)
    unsigned: int = 0
    _server: asyncio.Server | None = None

    def url(self, name: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook/{name}"

    def event_ids(self, webhook: str | None = None) -> set[str]:
        return {e for _, w, e in self.arrivals if webhook is None or w == webhook}

    def rate(self, since: float, until: float) -> float:
        """Signed POSTs a second between `since` and `until`."""
        count = sum(1 for t, _, _ in self.arrivals if since <= t <= until)
        return count / (until - since) if until > since else 0.0

    async def __aenter__(self) -> "Receiver":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                webhook = request_line.split(" ")[1].rsplit("/", 1)[-1]
                secret = self.secrets.get(webhook)
                if secret and verify(secret, body, headers.get("zaphub-signature", "")):
                    self.arrivals.append((time.perf_counter(), webhook, headers.get("zaphub-event-id", "")))
                else:
                    self.unsigned += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class BlackHole:
    """Accepts connections, reads nothing, answers nothing: every POST to it waits for its deadline."""

    connections: int = 0
    _server: asyncio.Server | None = None
    _held: list[asyncio.StreamWriter] = field(default_factory=list)

    def url(self, name: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hole/{name}"

    async def __aenter__(self) -> "BlackHole":
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _hold(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)
