"""Tenant route: NATS credentials that may only subscribe to the tenant's own events."""

from datetime import UTC, datetime
from uuid import UUID

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import CredentialsDisabled
from zaphub_api.errors import problem_responses
from zaphub_api.nats_credentials import CredentialIssuer, creds_file
from zaphub_api.schemas.tenants import NatsCredentials, NatsCredentialsCreate
from zaphub_api.settings import ApiSettings


class NatsCredentialsController(Controller):
    path = "/api/v1/nats-credentials"
    tags = ["events"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/",
        summary="Issue NATS credentials that can subscribe only to `zaphub.v1.evt.<your tenant>.>`",
        description="For event consumers in any language. 503 when this deployment runs NATS without "
        "decentralized auth (no account signing key configured).",
        responses=problem_responses(503),
    )
    async def issue(
        self,
        tenant_id: NamedDependency[UUID],
        issuer: NamedDependency[CredentialIssuer],
        settings: NamedDependency[ApiSettings],
        data: JSONBody[NatsCredentialsCreate | None] = None,
    ) -> NatsCredentials:
        if not issuer.enabled:
            raise CredentialsDisabled()
        issued = issuer.issue(tenant_id, data.ttl_seconds if data else None)
        return NatsCredentials(
            jwt=issued.jwt,
            seed=issued.seed,
            creds=creds_file(issued.jwt, issued.seed),
            user=issued.user,
            subject=issued.subject,
            inbox_prefix=issued.inbox_prefix,
            servers=[settings.nats_public_url or settings.nats_url],
            expires_at=datetime.fromtimestamp(issued.expires_at, UTC),
        )
