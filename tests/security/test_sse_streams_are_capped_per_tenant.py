"""Attack: a tenant opens event streams without end, each one a NATS subscription and a buffer in the
API. Defence: at most ZAPHUB_SSE_MAX_PER_TENANT streams per tenant (429 beyond), freed when one closes;
other tenants are not affected."""

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from e2e.client import eventually, new_tenant
from security.live_events import open_stream
from security.webhook_attacks import stack

from zaphub_devstack.testing import Stack

CAP = 3


@pytest.fixture(scope="module")
async def capped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack(tmp_path_factory.mktemp("sse-cap"), ZAPHUB_SSE_MAX_PER_TENANT=str(CAP)) as started:
        yield started


async def test_sse_streams_are_capped_per_tenant(capped: Stack) -> None:
    """The tenant's streams past the cap answer 429 with a problem type; another tenant still gets one;
    closing one frees its place."""
    async with httpx.AsyncClient(base_url=capped.api_url, timeout=30) as http:
        flooder = await new_tenant(http, capped.admin_key, "flooder")
        other = await new_tenant(http, capped.admin_key, "other")
        async with contextlib.AsyncExitStack() as held:
            streams = [await held.enter_async_context(open_stream(http, flooder.headers)) for _ in range(CAP)]
            assert [s.status for s in streams] == [200] * CAP
            refused = await http.get("/api/v1/events", headers=flooder.headers)
            assert refused.status_code == 429, refused.text
            assert refused.json()["type"].endswith("/too-many-event-streams")
            async with open_stream(http, other.headers) as others:
                assert others.status == 200
            await held.aclose()  # the flooder's streams close

        async def admitted() -> bool:
            async with open_stream(http, flooder.headers) as again:
                return again.status == 200

        await eventually(admitted, 15, "a stream once the others closed")
