"""Tenant use cases: creation with the first API key, limits kept where the ratelimiter reads them,
key rotation and revocation, and deletion with everything the tenant owns."""

from uuid import UUID

from zaphub_api.auth import KeyRing, new_key
from zaphub_api.commands import CommandPublisher
from zaphub_api.limits import LimitsPublisher
from zaphub_api.schemas.tenants import TenantCreate, TenantUpdate
from zaphub_api.store.tenants import ApiKey, Tenant, TenantStore
from zaphub_api.store.webhooks import WebhookStore
from zaphub_contracts.commands import SessionAction


class TenantService:
    def __init__(
        self,
        tenants: TenantStore,
        commands: CommandPublisher,
        limits: LimitsPublisher,
        keyring: KeyRing,
        webhooks: WebhookStore,
    ) -> None:
        self._tenants = tenants
        self._webhooks = webhooks
        self._commands = commands
        self._limits = limits
        self._keyring = keyring

    async def create(self, data: TenantCreate) -> tuple[Tenant, str]:
        """The tenant and the secret of its first API key (shown once, never stored)."""
        key = new_key()
        tenant = await self._tenants.create(data, key)
        if data.rate_limits is not None:
            await self._limits.publish(tenant.id, tenant.rate_limits)
        return tenant, key.secret

    async def update(self, tenant_id: UUID, data: TenantUpdate) -> Tenant:
        tenant = await self._tenants.update(tenant_id, data)
        if data.rate_limits is not None:
            # The ratelimiter watches this bucket: the new limits apply within a second.
            await self._limits.publish(tenant.id, tenant.rate_limits)
        return tenant

    async def delete(self, tenant_id: UUID) -> None:
        """Stop and delete the tenant's sessions, then its rows, webhooks, limits and cached keys."""
        # Commands first, rows second (as for one session): if NATS is down nothing is deleted and the
        # admin retries; a repeated delete command is harmless to the hosts.
        await self._tenants.get(tenant_id)
        for session_id in await self._tenants.session_ids(tenant_id):
            await self._commands.publish(SessionAction.DELETE, tenant_id, session_id)
        await self._tenants.delete(tenant_id)
        await self._webhooks.forget_tenant(tenant_id)  # the dispatchers stop delivering to them
        await self._limits.forget(tenant_id)
        self._keyring.forget()

    async def add_key(self, tenant_id: UUID, name: str) -> tuple[ApiKey, str]:
        """Another API key (rotation) and its secret, shown once."""
        key = new_key()
        return await self._tenants.add_key(tenant_id, name, key), key.secret

    async def revoke_key(self, tenant_id: UUID, key_id: UUID) -> None:
        """At once on this replica; within the key cache's seconds on the others."""
        await self._tenants.revoke_key(tenant_id, key_id)
        self._keyring.forget()
