"""Attack: a tenant points a webhook at the gateway's own loopback (its NATS, Postgres, metrics ports),
in every spelling of a loopback address. Defence: the egress policy refuses it at create and update."""

import httpx
from e2e.client import new_tenant
from security.webhook_attacks import Listener, refused_everywhere

from zaphub_devstack.testing import Stack

LOOPBACK = [
    "http://127.0.0.1:9/",
    "http://127.0.0.2:4222/",
    "http://127.1/",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::1]:9/",
    "http://[::ffff:127.0.0.1]:9/",
    "http://0.0.0.0:9/",
]


async def test_webhook_ssrf_to_loopback_is_refused(defaults: Stack) -> None:
    """Every loopback spelling answers 422 on `url` at create and update; nothing reaches a local server."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http, Listener() as local:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_everywhere(tenant, [*LOOPBACK, local.url])
        assert local.connections == 0
