"""Admin routes: tenants and their API keys."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import KeyRing, Principal, new_key, provide_admin
from zaphub_api.commands import CommandPublisher
from zaphub_api.errors import problem_responses
from zaphub_api.limits import LimitsPublisher
from zaphub_api.schemas.tenants import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)
from zaphub_api.store.tenants import TenantStore
from zaphub_contracts.commands import SessionAction

TENANT_ID = Annotated[UUID, Parameter(description="The tenant's id")]


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]
    dependencies = {"admin": Provide(provide_admin)}

    @post("/", summary="Create a tenant and its first API key", responses=problem_responses())
    async def create(
        self,
        admin: NamedDependency[Principal],
        data: JSONBody[TenantCreate],
        tenants: NamedDependency[TenantStore],
        limits: NamedDependency[LimitsPublisher],
    ) -> TenantCreated:
        key = new_key()
        tenant = await tenants.create(data, key)
        if data.rate_limits is not None:
            await limits.publish(tenant.id, tenant.rate_limits)
        return TenantCreated(**tenant.model_dump(), api_key=key.secret)

    @get("/", summary="List tenants", responses=problem_responses())
    async def list_tenants(
        self,
        admin: NamedDependency[Principal],
        tenants: NamedDependency[TenantStore],
        limit: Annotated[int, Parameter(ge=1, le=500, description="Page size")] = 100,
        offset: Annotated[int, Parameter(ge=0, description="Items to skip")] = 0,
    ) -> list[TenantRead]:
        return await tenants.list(limit, offset)

    @get("/{tenant_id:uuid}", summary="Get a tenant", responses=problem_responses())
    async def get_tenant(
        self, admin: NamedDependency[Principal], tenant_id: TENANT_ID, tenants: NamedDependency[TenantStore]
    ) -> TenantRead:
        return await tenants.get(tenant_id)

    @patch(
        "/{tenant_id:uuid}",
        summary="Update a tenant's name, rate limits or session quota",
        responses=problem_responses(),
    )
    async def update_tenant(
        self,
        admin: NamedDependency[Principal],
        tenant_id: TENANT_ID,
        data: JSONBody[TenantUpdate],
        tenants: NamedDependency[TenantStore],
        limits: NamedDependency[LimitsPublisher],
    ) -> TenantRead:
        tenant = await tenants.update(tenant_id, data)
        if data.rate_limits is not None:
            # The ratelimiter watches this bucket: the new limits apply within a second.
            await limits.publish(tenant.id, tenant.rate_limits)
        return tenant

    @delete(
        "/{tenant_id:uuid}",
        summary="Delete a tenant with its keys, sessions and messages; its sessions stop and lose auth_data",
        responses=problem_responses(503),
    )
    async def delete_tenant(
        self,
        admin: NamedDependency[Principal],
        tenant_id: TENANT_ID,
        tenants: NamedDependency[TenantStore],
        commands: NamedDependency[CommandPublisher],
        limits: NamedDependency[LimitsPublisher],
        keyring: NamedDependency[KeyRing],
    ) -> None:
        # Commands first, rows second (as for one session): if NATS is down nothing is deleted and the
        # admin retries; a repeated delete command is harmless to the hosts.
        await tenants.get(tenant_id)
        for session_id in await tenants.session_ids(tenant_id):
            await commands.publish(SessionAction.DELETE, tenant_id, session_id)
        await tenants.delete(tenant_id)
        await limits.forget(tenant_id)
        keyring.forget()

    @post(
        "/{tenant_id:uuid}/api-keys",
        summary="Create another API key for a tenant (rotation)",
        responses=problem_responses(),
    )
    async def create_key(
        self,
        admin: NamedDependency[Principal],
        tenant_id: TENANT_ID,
        data: JSONBody[ApiKeyCreate],
        tenants: NamedDependency[TenantStore],
    ) -> ApiKeyCreated:
        key = new_key()
        created = await tenants.add_key(tenant_id, data.name, key)
        return ApiKeyCreated(**created.model_dump(), api_key=key.secret)

    @get(
        "/{tenant_id:uuid}/api-keys",
        summary="A tenant's API keys, by prefix (the secrets are never stored)",
        responses=problem_responses(),
    )
    async def list_keys(
        self, admin: NamedDependency[Principal], tenant_id: TENANT_ID, tenants: NamedDependency[TenantStore]
    ) -> list[ApiKeyRead]:
        return await tenants.list_keys(tenant_id)

    @delete(
        "/{tenant_id:uuid}/api-keys/{key_id:uuid}",
        summary="Revoke an API key: it stops working at once here, within 5 s on other API replicas",
        responses=problem_responses(),
    )
    async def revoke_key(
        self,
        admin: NamedDependency[Principal],
        tenant_id: TENANT_ID,
        key_id: Annotated[UUID, Parameter(description="The key's id")],
        tenants: NamedDependency[TenantStore],
        keyring: NamedDependency[KeyRing],
    ) -> None:
        await tenants.revoke_key(tenant_id, key_id)
        keyring.forget()
