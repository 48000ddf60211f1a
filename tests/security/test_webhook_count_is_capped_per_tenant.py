"""Attack: a tenant creates webhooks without end, multiplying the deliveries (and the dispatchers' work)
of every event it causes. Defence: at most ZAPHUB_WEBHOOK_MAX_PER_TENANT webhooks (10), 409 beyond,
counted safely under concurrent creates; other tenants keep their own allowance."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from e2e.client import new_tenant
from security.webhook_attacks import PUBLIC_URL, create_webhook, stack

from zaphub_devstack.testing import Stack


@pytest.fixture(scope="module")
async def defaults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack(tmp_path_factory.mktemp("webhook-cap")) as started:
        yield started


async def test_webhook_count_is_capped_per_tenant(defaults: Stack) -> None:
    """Thirty concurrent creates give ten webhooks and twenty 409s; another tenant can still create one;
    after a delete, one more fits."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=60) as http:
        greedy = await new_tenant(http, defaults.admin_key, "greedy")
        other = await new_tenant(http, defaults.admin_key, "other")
        answers = await asyncio.gather(*(create_webhook(greedy, f"{PUBLIC_URL}/{n}") for n in range(30)))
        assert sorted(a.status_code for a in answers) == [201] * 10 + [409] * 20
        refused = next(a for a in answers if a.status_code == 409).json()
        assert refused["type"].endswith("/webhook-limit-reached") and refused["status"] == 409
        listed = (await http.get("/api/v1/webhooks", headers=greedy.headers)).json()
        assert len(listed) == 10
        assert (await create_webhook(other, PUBLIC_URL)).status_code == 201
        first = listed[0]["id"]
        assert (await http.delete(f"/api/v1/webhooks/{first}", headers=greedy.headers)).status_code == 204
        assert (await create_webhook(greedy, PUBLIC_URL)).status_code == 201
        assert (await create_webhook(greedy, PUBLIC_URL)).status_code == 409
