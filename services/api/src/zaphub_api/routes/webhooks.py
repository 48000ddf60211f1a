"""Tenant routes: webhooks (CRUD), their delivery log, and redelivery."""

from typing import Any, Literal
from uuid import UUID

import asyncpg
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.routes.pagination import Limit, Offset
from zaphub_api.schemas.webhooks import (
    AttemptRead,
    DeliveryRead,
    RedeliveryAccepted,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from zaphub_api.services.webhooks import WebhookService
from zaphub_api.store.webhooks import PENDING, WebhookStore

DeliveryStatus = Literal["pending", "retrying", "succeeded", "failed"]


def _read(row: asyncpg.Record) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "url", "description", "active", "created_at", "updated_at")} | {
        "events": list(row["events"])
    }


def _delivery(row: asyncpg.Record, attempts: list[asyncpg.Record]) -> DeliveryRead:
    return DeliveryRead(
        **{k: row[k] for k in DeliveryRead.model_fields if k != "attempt_log"},
        attempt_log=[AttemptRead(**{k: a[k] for k in AttemptRead.model_fields}) for a in attempts],
    )


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/",
        responses=problem_responses(409, 503),
        status_code=201,
        summary="Create a webhook; the answer shows its signing secret, once",
        description="The URL must reach a public address (or one the operator allows with "
        "ZAPHUB_EGRESS_ALLOW); 422 names `url` otherwise. 409 once the tenant has its maximum of webhooks.",
    )
    async def create(
        self,
        tenant_id: NamedDependency[UUID],
        data: JSONBody[WebhookCreate],
        webhook_service: NamedDependency[WebhookService],
    ) -> WebhookCreated:
        row = await webhook_service.create(tenant_id, data)
        return WebhookCreated(**_read(row), secret=row["secret"])

    @get("/", responses=problem_responses(409, 503), summary="The tenant's webhooks, oldest first")
    async def list_webhooks(
        self,
        tenant_id: NamedDependency[UUID],
        webhooks: NamedDependency[WebhookStore],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[WebhookRead]:
        return [WebhookRead(**_read(row)) for row in await webhooks.for_tenant(tenant_id, limit, offset)]

    @get(
        "/{webhook_id:uuid}", responses=problem_responses(409, 503), summary="A webhook (without its secret)"
    )
    async def get_webhook(
        self,
        tenant_id: NamedDependency[UUID],
        webhook_id: FromPath[UUID],
        webhooks: NamedDependency[WebhookStore],
    ) -> WebhookRead:
        return WebhookRead(**_read(await webhooks.get(tenant_id, webhook_id)))

    @patch(
        "/{webhook_id:uuid}",
        responses=problem_responses(409, 503),
        summary="Change a webhook's URL, events, description, secret or active flag",
    )
    async def update(
        self,
        tenant_id: NamedDependency[UUID],
        webhook_id: FromPath[UUID],
        data: JSONBody[WebhookUpdate],
        webhook_service: NamedDependency[WebhookService],
    ) -> WebhookRead:
        changes = data.model_dump(exclude_unset=True)
        for name in ("url", "events", "secret", "active"):
            if name in changes and changes[name] is None:
                changes.pop(name)  # explicit null means "leave as is"; only description can be cleared
        return WebhookRead(**_read(await webhook_service.update(tenant_id, webhook_id, changes)))

    @delete(
        "/{webhook_id:uuid}",
        responses=problem_responses(409, 503),
        status_code=204,
        summary="Delete a webhook; pending deliveries are dropped",
    )
    async def delete_webhook(
        self,
        tenant_id: NamedDependency[UUID],
        webhook_id: FromPath[UUID],
        webhooks: NamedDependency[WebhookStore],
    ) -> None:
        await webhooks.delete(tenant_id, webhook_id)

    @get(
        "/{webhook_id:uuid}/deliveries",
        responses=problem_responses(409, 503),
        summary="The webhook's deliveries, newest first, with attempts",
    )
    async def deliveries(
        self,
        tenant_id: NamedDependency[UUID],
        webhook_id: FromPath[UUID],
        webhooks: NamedDependency[WebhookStore],
        status: FromQuery[DeliveryStatus | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[DeliveryRead]:
        found = await webhooks.deliveries(tenant_id, webhook_id, status, limit, offset)
        return [_delivery(row, attempts) for row, attempts in found]

    @post(
        "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        responses=problem_responses(409, 503),
        status_code=202,
        summary="Queue a delivery again (e.g. after it failed); attempts continue from the last number",
    )
    async def redeliver(
        self,
        tenant_id: NamedDependency[UUID],
        webhook_id: FromPath[UUID],
        delivery_id: FromPath[UUID],
        webhook_service: NamedDependency[WebhookService],
    ) -> Response[RedeliveryAccepted]:
        delivery = await webhook_service.redeliver(tenant_id, webhook_id, delivery_id)
        accepted = RedeliveryAccepted(
            id=delivery.delivery_id, status=PENDING, next_attempt=delivery.first_attempt
        )
        return Response(accepted, status_code=202)
