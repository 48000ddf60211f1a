"""Tenant route: the rate-limit windows (used, limit, resets_at)."""

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency, Provide

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.usage import UsageClient
from zaphub_contracts.ratelimit import UsageReply


class UsageController(Controller):
    path = "/api/v1/usage"
    tags = ["usage"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @get(
        "/",
        summary="The tenant's rate-limit windows: used, limit and when the oldest token frees",
        responses=problem_responses(503),
    )
    async def usage(
        self, tenant_id: NamedDependency[UUID], usage: NamedDependency[UsageClient]
    ) -> UsageReply:
        return await usage.usage(tenant_id)
