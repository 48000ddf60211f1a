"""Tenant route: live events as Server-Sent Events, from a core NATS subscription to the tenant's subjects.

Shared fairly: a tenant holds at most `sse_max_per_tenant` streams per API process (429 beyond); each
stream buffers a few hundred events at most and a reader that falls that far behind is dropped; the
stream's key is checked again every `KEY_RECHECK` seconds, so a revoked key or a deleted tenant (whose
keys go with it) closes its streams within that time. Those checks run between writes, so a write
that waits more than `SEND_TIMEOUT` for a reader who stopped reading ends the stream as well.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Send
from nats.aio.msg import Msg

from zaphub_api.auth import digest, presented_key, provide_tenant_id
from zaphub_api.domain_errors import InvalidField, TooManyStreams
from zaphub_api.errors import problem_responses
from zaphub_api.settings import ApiSettings
from zaphub_contracts import subjects
from zaphub_contracts.events import EVENT_BY_SHORT
from zaphub_runtime.bus import Bus

KEY_RECHECK = 2.0  # seconds between checks that the stream's key is still valid
PENDING_MSGS = 256  # events buffered for one stream, in the NATS client and here, before it is dropped
PENDING_BYTES = 1024 * 1024
SEND_TIMEOUT = 5.0  # seconds one write may wait for the reader before the stream is dropped


class _DroppingSlowReaders(ASGIStreamingResponse):
    """Litestar's streaming body, with a deadline on each write: the generator sits at `yield` while a
    write waits, so without one a reader who stops reading would hold its stream for ever."""

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        sending = asyncio.ensure_future(self._send_until_stalled(send))
        leaving = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({sending, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Ended, dropped or left: whichever came first stops the other.
            for task in (sending, leaving):
                task.cancel()
            await asyncio.gather(sending, leaving, return_exceptions=True)
        if not sending.cancelled() and (failed := sending.exception()) is not None:
            raise failed

    async def _send_until_stalled(self, send: Send) -> None:
        iterator = aiter(self.iterator)
        try:
            async for chunk in iterator:
                body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
                event: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": True}
                try:
                    await asyncio.wait_for(send(event), SEND_TIMEOUT)
                except TimeoutError:
                    return  # the connection is left unfinished: the server closes it
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # The stream's own cleanup (its subscription, its slot) is in the generator that Litestar's
            # SSE iterator wraps; a generator left suspended at `yield` would never run it.
            source = getattr(self.iterator, "content_async_iterator", iterator)
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream(ServerSentEvent):
    """Server-Sent Events whose slow readers are dropped (`_DroppingSlowReaders`)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        assert isinstance(response, ASGIStreamingResponse)
        response.__class__ = _DroppingSlowReaders  # same slots; only how the body is sent differs
        return response


class EventStreams:
    """The open event streams of this API process, counted per tenant."""

    def __init__(self, max_per_tenant: int) -> None:
        self._max = max_per_tenant
        self._open: dict[UUID, int] = {}

    def open_for(self, tenant_id: UUID) -> int:
        return self._open.get(tenant_id, 0)

    def claim(self, tenant_id: UUID) -> None:
        if self._open.get(tenant_id, 0) >= self._max:
            raise TooManyStreams(self._max)
        self._open[tenant_id] = self._open.get(tenant_id, 0) + 1

    def release(self, tenant_id: UUID) -> None:
        left = self._open.get(tenant_id, 0) - 1
        if left > 0:
            self._open[tenant_id] = left
        else:
            self._open.pop(tenant_id, None)

    @contextlib.contextmanager
    def held(self, tenant_id: UUID) -> Iterator[None]:
        try:
            yield
        finally:
            self.release(tenant_id)


def _types(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(names - set(EVENT_BY_SHORT))
    if unknown or not names:
        known = ", ".join(sorted(EVENT_BY_SHORT))
        raise InvalidField("types", f"unknown event type(s) {', '.join(unknown)}; known: {known}")
    return names


async def _key_valid(pool: asyncpg.Pool, key_digest: bytes) -> bool:
    """The key is neither revoked nor gone with its tenant (the cache of auth.py is not asked: this
    must see a revocation made by any API process)."""
    found = await pool.fetchval(
        "SELECT 1 FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_digest
    )
    return found is not None


async def _stream(
    bus: Bus,
    pool: asyncpg.Pool,
    key_digest: bytes,
    tenant_id: UUID,
    types: frozenset[str] | None,
    heartbeat: float,
    streams: EventStreams,
) -> AsyncIterator[ServerSentEventMessage]:
    with streams.held(tenant_id):
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=PENDING_MSGS)
        slow = asyncio.Event()

        async def take(msg: Msg) -> None:
            try:
                queue.put_nowait(msg)
            except asyncio.QueueFull:
                slow.set()  # the reader is this far behind: it is dropped, not buffered for

        sub = await bus.nc.subscribe(
            subjects.tenant_events(tenant_id),
            cb=take,
            pending_msgs_limit=PENDING_MSGS,
            pending_bytes_limit=PENDING_BYTES,
        )
        try:
            yield ServerSentEventMessage(data=None, comment="connected")
            next_check = time.monotonic() + KEY_RECHECK
            next_beat = time.monotonic() + heartbeat
            while True:
                now = time.monotonic()
                if slow.is_set():
                    yield ServerSentEventMessage(data=None, comment="closed: the reader is too slow")
                    return
                if now >= next_check:
                    if not await _key_valid(pool, key_digest):
                        yield ServerSentEventMessage(data=None, comment="closed: the API key was revoked")
                        return
                    next_check = now + KEY_RECHECK
                if now >= next_beat:
                    yield ServerSentEventMessage(data=None, comment="heartbeat")
                    next_beat = now + heartbeat
                try:
                    msg = await asyncio.wait_for(queue.get(), max(0.05, min(next_check, next_beat) - now))
                except TimeoutError:
                    continue
                try:
                    routed = subjects.parse(msg.subject)
                    event_id = json.loads(msg.data)["id"]
                except (subjects.SubjectError, ValueError, KeyError, TypeError):
                    continue
                short = routed.kind.removeprefix("evt.")
                if routed.tenant_id != tenant_id or (types is not None and short not in types):
                    continue
                yield ServerSentEventMessage(data=msg.data.decode(), event=short, id=str(event_id))
        finally:
            # Runs when the client goes away (the response is cancelled) or the app stops.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @get(
        "/",
        media_type="text/event-stream",
        responses=problem_responses(429),
        summary="Live events of the tenant as Server-Sent Events (event: short type, data: CloudEvent JSON)",
        description="A comment line is sent every few seconds as a heartbeat. Events published while no "
        "stream is open are not replayed; use webhooks or NATS for guaranteed delivery. A tenant may hold "
        "ZAPHUB_SSE_MAX_PER_TENANT streams (429 beyond); a stream closes within seconds of its key's "
        "revocation, and a reader that falls behind is dropped.",
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        tenant_id: NamedDependency[UUID],
        bus: NamedDependency[Bus],
        pool: NamedDependency[asyncpg.Pool],
        event_streams: NamedDependency[EventStreams],
        settings: NamedDependency[ApiSettings],
        types: Annotated[
            str | None,
            Parameter(description="Comma-separated event types, e.g. message.received,message.sent"),
        ] = None,
    ) -> EventStream:
        wanted = _types(types)
        key_digest = digest(presented_key(request))
        event_streams.claim(tenant_id)  # released by the stream when it ends
        return EventStream(
            _stream(bus, pool, key_digest, tenant_id, wanted, settings.sse_heartbeat, event_streams)
        )
