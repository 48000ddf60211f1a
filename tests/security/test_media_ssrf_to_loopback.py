"""Attack: a tenant sends media whose URL is the gateway's own loopback (its NATS monitoring, metrics
or database ports), in every spelling of a loopback address. Defence: the API refuses it before the
send is queued, and nothing connects to a server listening there."""

import httpx
from e2e.client import new_tenant
from security.media_attacks import refused_media
from security.webhook_attacks import Listener

from zaphub_devstack.testing import Stack

LOOPBACK = [
    "http://127.0.0.1:9/",
    "http://127.0.0.2:8222/varz",
    "http://127.1/",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f000001/",  # and in hex
    "http://0177.0.0.1/",  # and in octal
    "http://[::1]:9/",
    "http://[::ffff:127.0.0.1]:9/",
    "http://0.0.0.0:9/",
]


async def test_media_ssrf_to_loopback_is_refused(defaults: Stack) -> None:
    """Every loopback spelling answers 422 on `url`; a server on the gateway's loopback sees nothing."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http, Listener() as local:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_media(tenant, [*LOOPBACK, local.url])
        assert local.connections == 0
