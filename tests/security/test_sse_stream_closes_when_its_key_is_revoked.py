"""Attack: a stream opened with a key keeps delivering the tenant's events after the key was revoked
(a leaked key, a fired employee) or the tenant deleted. Defence: the stream re-checks its key every
2 s and closes within 5 s of the revocation or deletion."""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from e2e.client import new_tenant
from security.live_events import open_stream
from security.webhook_attacks import stack

from zaphub_devstack.testing import Stack

WITHIN = 5.0


@pytest.fixture(scope="module")
async def defaults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack(tmp_path_factory.mktemp("sse-revoke")) as started:
        yield started


async def test_sse_stream_closes_when_its_key_is_revoked(defaults: Stack) -> None:
    """The stream of a revoked key ends within 5 s; a stream of the tenant's other key stays open."""
    admin = {"Authorization": f"Bearer {defaults.admin_key}"}
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key)
        keys = f"/api/v1/tenants/{tenant.id}/api-keys"
        extra = await http.post(keys, json={"name": "leaked"}, headers=admin)
        assert extra.status_code == 201, extra.text
        leaked = {"Authorization": f"Bearer {extra.json()['api_key']}"}
        async with open_stream(http, leaked) as doomed, open_stream(http, tenant.headers) as kept:
            revoked = await http.delete(f"{keys}/{extra.json()['id']}", headers=admin)
            assert revoked.status_code == 204, revoked.text
            at = time.monotonic()
            await _ends(doomed.ended, WITHIN + 1)
            assert doomed.ended_at is not None and doomed.ended_at - at <= WITHIN
            assert not kept.ended.is_set()


async def test_sse_stream_closes_when_its_tenant_is_deleted(defaults: Stack) -> None:
    """Deleting the tenant ends its open streams within 5 s."""
    admin = {"Authorization": f"Bearer {defaults.admin_key}"}
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key, "doomed")
        async with open_stream(http, tenant.headers) as stream:
            assert (await http.delete(f"/api/v1/tenants/{tenant.id}", headers=admin)).status_code == 204
            at = time.monotonic()
            await _ends(stream.ended, WITHIN + 1)
            assert stream.ended_at is not None and stream.ended_at - at <= WITHIN


async def _ends(ended: asyncio.Event, timeout: float) -> None:
    await asyncio.wait_for(ended.wait(), timeout)
