"""Webhook use cases: creating and changing one (its URL through the egress policy), and redelivering
a delivery with the event as the bus still holds it."""

import asyncio
import json
from typing import Any
from uuid import UUID

import asyncpg
from nats.js.errors import NotFoundError

from zaphub_api.domain_errors import EventNotRetained, UrlRefused, WebhookInactive
from zaphub_api.schemas.webhooks import WebhookCreate
from zaphub_api.store.webhooks import WebhookStore
from zaphub_contracts import streams, subjects
from zaphub_contracts.webhooks import WebhookDelivery
from zaphub_runtime.bus import Bus
from zaphub_runtime.egress import EgressPolicy, EgressRefused
from zaphub_runtime.egress.errors import UNRESOLVED

RESOLVE_TIMEOUT = 5.0  # seconds a webhook URL's name may take to resolve at create or update


class WebhookService:
    def __init__(self, webhooks: WebhookStore, bus: Bus, egress: EgressPolicy) -> None:
        self._webhooks = webhooks
        self._bus = bus
        self._egress = egress

    async def _check_url(self, url: str) -> None:
        """422 on `url` when the egress policy refuses it, literal address or resolved name; the POST
        checks again (a name may resolve elsewhere by then)."""
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                await self._egress.check(url)
        except EgressRefused as exc:
            raise UrlRefused("url", exc.reason) from None
        except TimeoutError:
            raise UrlRefused("url", UNRESOLVED) from None

    async def create(self, tenant_id: UUID, data: WebhookCreate) -> asyncpg.Record:
        await self._check_url(data.url)
        return await self._webhooks.create(
            tenant_id, data.url, data.events, data.secret, data.description, data.active
        )

    async def update(self, tenant_id: UUID, webhook_id: UUID, changes: dict[str, Any]) -> asyncpg.Record:
        if "url" in changes:
            await self._check_url(changes["url"])
        return await self._webhooks.update(tenant_id, webhook_id, changes)

    async def redeliver(self, tenant_id: UUID, webhook_id: UUID, delivery_id: UUID) -> WebhookDelivery:
        """Queue the delivery again for the dispatcher; its attempts go on from the last number."""
        webhook = await self._webhooks.get(tenant_id, webhook_id)
        if not webhook["active"]:
            raise WebhookInactive(webhook_id)
        row = await self._webhooks.delivery(tenant_id, webhook_id, delivery_id)
        delivery = WebhookDelivery(
            delivery_id=row["id"],
            webhook_id=webhook_id,
            tenant_id=tenant_id,
            session_id=row["session_id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            event_seq=row["event_seq"],
            body=await self._event_body(row["event_seq"], row["event_id"]),
            first_attempt=row["attempts"] + 1,
        )
        await self._bus.publish(subjects.webhook_delivery(tenant_id, webhook_id), delivery, delivery.msg_id)
        await self._webhooks.mark_pending(row["id"])
        return delivery

    async def _event_body(self, seq: int | None, event_id: UUID) -> str:
        """The event as it is on ZAPHUB_EVT; gone once the stream's retention dropped it."""
        if seq is None:
            raise EventNotRetained(event_id)
        try:
            msg = await self._bus.js.get_msg(streams.EVT.name, seq)
        except NotFoundError:
            raise EventNotRetained(event_id) from None
        body = (msg.data or b"").decode()
        try:
            same = json.loads(body).get("id") == str(event_id)
        except (ValueError, AttributeError):
            same = False
        if not same:
            raise EventNotRetained(event_id)  # the sequence holds another message after a stream reset
        return body
