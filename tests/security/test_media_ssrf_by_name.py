"""Attack: a tenant hides a loopback address behind a host name (`localhost` in any case, with a
trailing dot). Defence: the API resolves the name and refuses it if any of its addresses is."""

import httpx
from e2e.client import new_tenant
from security.media_attacks import refused_media
from security.webhook_attacks import Listener

from zaphub_devstack.testing import Stack


async def test_media_ssrf_by_name_is_refused(defaults: Stack) -> None:
    """`localhost` and its spellings answer 422 on `url`; a server listening there sees nothing."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http, Listener() as local:
        tenant = await new_tenant(http, defaults.admin_key)
        names = [f"http://localhost:{local.port}/a.pdf", "http://localhost:9/", "http://LOCALHOST./"]
        await refused_media(tenant, names)
        assert local.connections == 0
