"""Attack: DNS rebinding, a webhook name that resolved to a public address when it was created and to
an internal one when the dispatcher POSTs. Defence: the dispatcher checks the URL again at POST time
and connects only to the address that check saw; the attempt is recorded as refused.

A name's answer cannot be changed under a running process from a test (no resolver of ours sits
between the services and the system's), so the change is made where the decision is: the API runs
with `ZAPHUB_EGRESS_ALLOW=127.0.0.1` (the address passed at create time, as a public one would) and
the dispatcher without it (the same URL is refused at POST time, as after a rebinding)."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from e2e.client import new_tenant
from security.webhook_attacks import Listener, attempts, create_webhook, stack

from zaphub_devstack.testing import Stack


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


SERVICES = {
    "api": [_script("zaphub-api")],
    # The dispatcher sees the policy an address has after the change: not allowed.
    "dispatcher-1": ["env", "-u", "ZAPHUB_EGRESS_ALLOW", _script("zaphub-dispatcher")],
    "ratelimiter-1": [_script("zaphub-ratelimiter")],
    "session-host-1": [_script("zaphub-session-host")],
}


@pytest.fixture(scope="module")
async def changed_under_the_dispatcher(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("ssrf-dns")
    async with stack(data_dir, SERVICES, ZAPHUB_EGRESS_ALLOW="127.0.0.1") as started:
        yield started


async def test_webhook_ssrf_by_dns_change_is_refused_at_post_time(
    changed_under_the_dispatcher: Stack,
) -> None:
    """Accepted at create, the webhook's deliveries are recorded as refused and never reach the address."""
    async with (
        httpx.AsyncClient(base_url=changed_under_the_dispatcher.api_url, timeout=30) as http,
        Listener() as internal,
    ):
        tenant = await new_tenant(http, changed_under_the_dispatcher.admin_key)
        created = await create_webhook(tenant, internal.url)
        assert created.status_code == 201, created.text
        await tenant.connected_session()
        logged = await attempts(tenant, created.json()["id"], least=2)
        assert {a["error"] for a in logged} == {"refused: the address is not allowed"}
        assert {a["response_code"] for a in logged} == {None}
        assert internal.connections == 0
