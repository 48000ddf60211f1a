"""Attack: a tenant's webhook points at an allowed server that answers 302 to an internal address,
hoping the dispatcher follows it there. Defence: webhook POSTs follow no redirect; the 3xx is only
recorded as the attempt's status, and nothing reaches the redirect's target."""

from collections.abc import AsyncIterator

import httpx
import pytest
from e2e.client import new_tenant
from security.webhook_attacks import Listener, Redirector, attempts, create_webhook, stack

from zaphub_devstack.testing import Stack


@pytest.fixture(scope="module")
async def allowing_one_address(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Only 127.0.0.1 is allowed (the redirector); the target listens on 127.0.0.2."""
    async with stack(tmp_path_factory.mktemp("ssrf-redirect"), ZAPHUB_EGRESS_ALLOW="127.0.0.1") as started:
        yield started


async def test_webhook_ssrf_by_redirect_is_not_followed(allowing_one_address: Stack) -> None:
    """The delivery log shows 302 attempts with no body or location; the internal target gets no request."""
    async with (
        httpx.AsyncClient(base_url=allowing_one_address.api_url, timeout=30) as http,
        Listener("127.0.0.2") as target,
    ):
        async with Redirector(f"{target.url}?stolen=1") as redirector:
            tenant = await new_tenant(http, allowing_one_address.admin_key)
            created = await create_webhook(tenant, redirector.url)
            assert created.status_code == 201, created.text
            await tenant.connected_session()  # its session events are delivered to the webhook
            logged = await attempts(tenant, created.json()["id"], least=2)
        assert {a["response_code"] for a in logged} == {302}
        assert all(a["error"] == "HTTP 302" for a in logged)
        assert redirector.connections >= 1
        assert target.connections == 0
