"""Attack: a tenant hides an internal address behind a host name (`localhost`, a name resolving to
loopback). Defence: the name is resolved at create and update and refused if any address is."""

import httpx
from e2e.client import new_tenant
from security.webhook_attacks import Listener, refused_everywhere

from zaphub_devstack.testing import Stack


async def test_webhook_ssrf_by_name_is_refused(defaults: Stack) -> None:
    """`localhost` (any case, trailing dot) and a name that does not resolve answer 422 on `url`."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http, Listener() as local:
        tenant = await new_tenant(http, defaults.admin_key)
        names = [f"http://localhost:{local.port}/", "http://localhost:9/", "http://LOCALHOST./"]
        await refused_everywhere(tenant, [*names, "http://ip6-localhost/", "http://name.invalid/"])
        assert local.connections == 0
