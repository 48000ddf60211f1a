"""Admin routes: tenants and their API keys."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter

from zaphub_api.auth import Principal, new_key, provide_admin
from zaphub_api.limits import LimitsPublisher
from zaphub_api.schemas.tenants import (
    ApiKeyCreate,
    ApiKeyCreated,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from zaphub_api.store.tenants import TenantStore


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]
    dependencies = {"admin": Provide(provide_admin)}

    @post("/", summary="Create a tenant and its first API key")
    async def create(
        self, admin: Principal, data: TenantCreate, tenants: TenantStore, limits: LimitsPublisher
    ) -> TenantCreated:
        key = new_key()
        tenant = await tenants.create(data, key)
        if data.rate_limits is not None:
            await limits.publish(tenant.id, tenant.rate_limits)
        return TenantCreated(**tenant.model_dump(), api_key=key.secret)

    @get("/", summary="List tenants")
    async def list_tenants(
        self,
        admin: Principal,
        tenants: TenantStore,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> list[TenantRead]:
        return await tenants.list(limit, offset)

    @get("/{tenant_id:uuid}", summary="Get a tenant")
    async def get_tenant(self, admin: Principal, tenant_id: UUID, tenants: TenantStore) -> TenantRead:
        return await tenants.get(tenant_id)

    @patch("/{tenant_id:uuid}", summary="Update a tenant's name, rate limits or session quota")
    async def update_tenant(
        self,
        admin: Principal,
        tenant_id: UUID,
        data: TenantUpdate,
        tenants: TenantStore,
        limits: LimitsPublisher,
    ) -> TenantRead:
        tenant = await tenants.update(tenant_id, data)
        if data.rate_limits is not None:
            # The ratelimiter watches this bucket: the new limits apply within a second.
            await limits.publish(tenant.id, tenant.rate_limits)
        return tenant

    @post("/{tenant_id:uuid}/api-keys", summary="Create another API key for a tenant (rotation)")
    async def create_key(
        self, admin: Principal, tenant_id: UUID, data: ApiKeyCreate, tenants: TenantStore
    ) -> ApiKeyCreated:
        key = new_key()
        created = await tenants.add_key(tenant_id, data.name, key)
        return ApiKeyCreated(**created.model_dump(), api_key=key.secret)
