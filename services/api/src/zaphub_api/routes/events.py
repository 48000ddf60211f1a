"""Tenant route: live events as Server-Sent Events, from a core NATS subscription to the tenant's subjects."""

import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import nats.errors
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import InvalidField
from zaphub_api.settings import ApiSettings
from zaphub_contracts import subjects
from zaphub_contracts.events import EVENT_BY_SHORT
from zaphub_runtime.bus import Bus


def _types(raw: str | None) -> frozenset[str] | None:
    if not raw:
        return None
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(names - set(EVENT_BY_SHORT))
    if unknown or not names:
        known = ", ".join(sorted(EVENT_BY_SHORT))
        raise InvalidField("types", f"unknown event type(s) {', '.join(unknown)}; known: {known}")
    return names


async def _stream(
    bus: Bus, tenant_id: UUID, types: frozenset[str] | None, heartbeat: float
) -> AsyncIterator[ServerSentEventMessage]:
    sub = await bus.nc.subscribe(subjects.tenant_events(tenant_id))
    try:
        yield ServerSentEventMessage(data=None, comment="connected")
        while True:
            try:
                msg = await sub.next_msg(timeout=heartbeat)
            except nats.errors.TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
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
        await sub.unsubscribe()


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @get(
        "/",
        media_type="text/event-stream",
        summary="Live events of the tenant as Server-Sent Events (event: short type, data: CloudEvent JSON)",
        description="A comment line is sent every few seconds as a heartbeat. Events published while no "
        "stream is open are not replayed; use webhooks or NATS for guaranteed delivery.",
    )
    async def events(
        self,
        tenant_id: NamedDependency[UUID],
        bus: NamedDependency[Bus],
        settings: NamedDependency[ApiSettings],
        types: Annotated[
            str | None,
            Parameter(description="Comma-separated event types, e.g. message.received,message.sent"),
        ] = None,
    ) -> ServerSentEvent:
        wanted = _types(types)
        return ServerSentEvent(_stream(bus, tenant_id, wanted, settings.sse_heartbeat))
