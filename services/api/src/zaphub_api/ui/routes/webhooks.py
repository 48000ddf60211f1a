"""The Webhooks page: the tenant's webhooks, creating one (its secret shown once), a webhook's
deliveries with their outcome and attempts, and redelivering one."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import go, page

COMMON_EVENTS = (
    "message.sent",
    "message.delivered",
    "message.read",
    "message.failed",
    "message.received",
    "session.connected",
    "session.qr",
    "session.logged_out",
)


class WebhookPages(Controller):
    path = "/webhooks"

    async def _list_page(self, signed: Signed, status_code: int = 200, **context: Any) -> Template:
        webhooks = await signed.api.get("/api/v1/webhooks", limit=500)
        return page(
            "webhooks.html",
            signed,
            status_code,
            webhooks=webhooks,
            events=COMMON_EVENTS,
            nav="webhooks",
            **context,
        )

    @get("/")
    async def list_page(self, signed: NamedDependency[Signed]) -> Template:
        return await self._list_page(signed)

    @post("/")
    async def create(self, request: Request[Any, Any, Any], signed: NamedDependency[Signed]) -> Template:
        form = await request.form()
        url = str(form.get("url") or "").strip()
        events = [str(e) for e in form.getall("events", [])] or ["*"]
        body: dict[str, Any] = {"url": url, "events": events}
        if description := str(form.get("description") or "").strip():
            body["description"] = description
        try:
            created = await signed.api.post("/api/v1/webhooks", body)
        except ApiRefused as exc:
            errors = exc.field_errors()
            return await self._list_page(
                signed,
                422,
                error=errors.get("url") or errors.get("events") or exc.message,
                form={"url": url, "events": events, "description": description},
            )
        # The secret is in this response only: the page shows it now and never again (no redirect).
        return await self._list_page(signed, 201, created=created)

    @get("/{webhook_id:uuid}")
    async def deliveries(
        self,
        signed: NamedDependency[Signed],
        webhook_id: FromPath[UUID],
        status: FromQuery[str | None] = None,
    ) -> Template:
        webhook = await signed.api.get(f"/api/v1/webhooks/{webhook_id}")
        deliveries = await signed.api.get(
            f"/api/v1/webhooks/{webhook_id}/deliveries", status=status, limit=100
        )
        return page(
            "webhook.html",
            signed,
            webhook=webhook,
            deliveries=deliveries,
            status=status or "",
            nav="webhooks",
        )

    @get("/{webhook_id:uuid}/deliveries")
    async def delivery_rows(
        self,
        signed: NamedDependency[Signed],
        webhook_id: FromPath[UUID],
        status: FromQuery[str | None] = None,
    ) -> Template:
        deliveries = await signed.api.get(
            f"/api/v1/webhooks/{webhook_id}/deliveries", status=status, limit=100
        )
        return page("partials/delivery_rows.html", signed, webhook_id=webhook_id, deliveries=deliveries)

    @post("/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver")
    async def redeliver(
        self, signed: NamedDependency[Signed], webhook_id: FromPath[UUID], delivery_id: FromPath[UUID]
    ) -> Template:
        accepted = await signed.api.post(f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
        return page(
            "partials/notice.html", signed, message=f"Queued again (attempt {accepted['next_attempt']})."
        )

    @post("/{webhook_id:uuid}/delete")
    async def delete(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], webhook_id: FromPath[UUID]
    ) -> Response[Any]:
        await signed.api.delete(f"/api/v1/webhooks/{webhook_id}")
        return go(request, "/ui/webhooks")
