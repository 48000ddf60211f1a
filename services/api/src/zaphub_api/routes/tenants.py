"""Admin routes: tenants and their API keys (the controller's guard makes every handler admin-only)."""

from dataclasses import asdict
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import admin_only
from zaphub_api.errors import problem_responses
from zaphub_api.routes.pagination import Limit, Offset
from zaphub_api.schemas.tenants import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from zaphub_api.services.tenants import TenantService
from zaphub_api.store.tenants import TenantStore

TENANT_ID = Annotated[UUID, Parameter(description="The tenant's id")]


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]
    guards = [admin_only]

    @post("/", summary="Create a tenant and its first API key", responses=problem_responses())
    async def create(
        self,
        data: JSONBody[TenantCreate],
        tenant_service: NamedDependency[TenantService],
    ) -> TenantCreated:
        tenant, secret = await tenant_service.create(data)
        return TenantCreated(**asdict(tenant), api_key=secret)

    @get("/", summary="List tenants", responses=problem_responses())
    async def list_tenants(
        self,
        tenants: NamedDependency[TenantStore],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[TenantRead]:
        return [TenantRead(**asdict(t)) for t in await tenants.list(limit, offset)]

    @get("/{tenant_id:uuid}", summary="Get a tenant", responses=problem_responses())
    async def get_tenant(self, tenant_id: TENANT_ID, tenants: NamedDependency[TenantStore]) -> TenantRead:
        return TenantRead(**asdict(await tenants.get(tenant_id)))

    @patch(
        "/{tenant_id:uuid}",
        summary="Update a tenant's name, rate limits or session quota",
        responses=problem_responses(),
    )
    async def update_tenant(
        self,
        tenant_id: TENANT_ID,
        data: JSONBody[TenantUpdate],
        tenant_service: NamedDependency[TenantService],
    ) -> TenantRead:
        return TenantRead(**asdict(await tenant_service.update(tenant_id, data)))

    @delete(
        "/{tenant_id:uuid}",
        summary="Delete a tenant with its keys, sessions and messages; its sessions stop and lose auth_data",
        responses=problem_responses(503),
    )
    async def delete_tenant(
        self,
        tenant_id: TENANT_ID,
        tenant_service: NamedDependency[TenantService],
    ) -> None:
        await tenant_service.delete(tenant_id)

    @post(
        "/{tenant_id:uuid}/api-keys",
        summary="Create another API key for a tenant (rotation)",
        responses=problem_responses(),
    )
    async def create_key(
        self,
        tenant_id: TENANT_ID,
        data: JSONBody[ApiKeyCreate],
        tenant_service: NamedDependency[TenantService],
    ) -> ApiKeyCreated:
        created, secret = await tenant_service.add_key(tenant_id, data.name)
        return ApiKeyCreated(**asdict(created), api_key=secret)

    @get(
        "/{tenant_id:uuid}/api-keys",
        summary="A tenant's API keys, by prefix (the secrets are never stored)",
        responses=problem_responses(),
    )
    async def list_keys(
        self, tenant_id: TENANT_ID, tenants: NamedDependency[TenantStore]
    ) -> list[ApiKeyRead]:
        return [ApiKeyRead(**asdict(k)) for k in await tenants.list_keys(tenant_id)]

    @delete(
        "/{tenant_id:uuid}/api-keys/{key_id:uuid}",
        summary="Revoke an API key: it stops working at once here, within 5 s on other API replicas",
        responses=problem_responses(),
    )
    async def revoke_key(
        self,
        tenant_id: TENANT_ID,
        key_id: Annotated[UUID, Parameter(description="The key's id")],
        tenant_service: NamedDependency[TenantService],
    ) -> None:
        await tenant_service.revoke_key(tenant_id, key_id)
