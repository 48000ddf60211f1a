"""The Admin pages (admin key only): installation capacity, live session-hosts, tenants, and a
tenant's API keys (create, shown once; revoke)."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import go, page


def capacity(stats: dict[str, Any]) -> dict[str, Any]:
    """The meter of the API's installation stats (`GET /sessions/stats` with the admin key): its usage,
    or 100 % once the API says "blocked" (with no live host, 0 of 0 is blocked too)."""
    used = stats["capacity"]
    percent = 100.0 if "blocked" in stats.get("alerts", []) else min(float(used["usage_percent"]), 100.0)
    return {
        "active": used["active"],
        "max": used["max"],
        "percent": percent,
        "hosts": stats["limits"]["hosts"],
    }


class AdminPages(Controller):
    path = "/admin"

    async def _overview(self, signed: Signed, status_code: int = 200, **context: Any) -> Template:
        tenants = await signed.api.get("/api/v1/tenants", limit=500)
        hosts = await signed.api.get("/api/v1/hosts")
        stats = await signed.api.get("/api/v1/sessions/stats")
        return page(
            "admin.html",
            signed,
            status_code,
            tenants=tenants,
            hosts=hosts,
            capacity=capacity(stats),
            nav="admin",
            **context,
        )

    @get("/")
    async def overview(self, signed: NamedDependency[Signed]) -> Template:
        return await self._overview(signed)

    @post("/tenants")
    async def create_tenant(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed]
    ) -> Template:
        form = await request.form()
        body: dict[str, Any] = {"name": str(form.get("name") or "").strip()}
        max_sessions = str(form.get("max_sessions") or "").strip()
        if max_sessions:
            if not max_sessions.isdigit():
                return await self._overview(signed, 422, error="Max sessions must be a whole number.")
            body["max_sessions"] = int(max_sessions)
        try:
            created = await signed.api.post("/api/v1/tenants", body)
        except ApiRefused as exc:
            return await self._overview(signed, 422, error=exc.message)
        return await self._overview(signed, 201, created=created)

    async def _tenant(
        self, signed: Signed, tenant_id: FromPath[UUID], status_code: int = 200, **context: Any
    ) -> Template:
        tenant = await signed.api.get(f"/api/v1/tenants/{tenant_id}")
        keys = await signed.api.get(f"/api/v1/tenants/{tenant_id}/api-keys")
        return page("tenant.html", signed, status_code, tenant=tenant, keys=keys, nav="admin", **context)

    @get("/tenants/{tenant_id:uuid}")
    async def tenant(self, signed: NamedDependency[Signed], tenant_id: FromPath[UUID]) -> Template:
        return await self._tenant(signed, tenant_id)

    @post("/tenants/{tenant_id:uuid}/keys")
    async def create_key(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], tenant_id: FromPath[UUID]
    ) -> Template:
        name = str((await request.form()).get("name") or "").strip() or "default"
        try:
            created = await signed.api.post(f"/api/v1/tenants/{tenant_id}/api-keys", {"name": name})
        except ApiRefused as exc:
            return await self._tenant(signed, tenant_id, 422, error=exc.message)
        return await self._tenant(signed, tenant_id, 201, created=created)

    @post("/tenants/{tenant_id:uuid}/keys/{key_id:uuid}/revoke")
    async def revoke_key(
        self,
        request: Request[Any, Any, Any],
        signed: NamedDependency[Signed],
        tenant_id: FromPath[UUID],
        key_id: FromPath[UUID],
    ) -> Response[Any]:
        await signed.api.delete(f"/api/v1/tenants/{tenant_id}/api-keys/{key_id}")
        return go(request, f"/ui/admin/tenants/{tenant_id}")
