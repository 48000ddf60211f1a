"""Holding Server-Sent Event streams open in the attack tests: a stream read in the background, and
when it ended."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass
class OpenStream:
    status: int
    lines: list[str] = field(default_factory=list)
    ended_at: float | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def open_stream(http: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[OpenStream]:
    """GET /api/v1/events, read in the background until the server ends it or the block exits."""
    async with http.stream("GET", "/api/v1/events", headers=headers, timeout=None) as response:
        stream = OpenStream(response.status_code)
        if response.status_code != 200:
            await response.aread()
            stream.lines.append(response.text)
            yield stream
            return

        async def read() -> None:
            try:
                async for line in response.aiter_lines():
                    stream.lines.append(line)
                    if line.startswith(": connected"):
                        stream.connected.set()
            except httpx.HTTPError:
                pass
            finally:
                stream.ended_at = time.monotonic()
                stream.ended.set()

        reader = asyncio.create_task(read())
        try:
            await asyncio.wait_for(stream.connected.wait(), 30)
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
