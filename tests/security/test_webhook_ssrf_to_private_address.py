"""Attack: a tenant points a webhook at internal services on private networks by literal address.
Defence: private, CGNAT, unique-local and other non-public ranges are refused at create and update."""

import httpx
from e2e.client import new_tenant
from security.webhook_attacks import refused_everywhere

from zaphub_devstack.testing import Stack

PRIVATE = [
    "http://10.0.0.1/",
    "http://10.255.255.254:8222/varz",  # a NATS monitoring port
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://[fd12:3456::1]/",  # unique local
    "http://[fe80::1]/",  # link local
    "http://224.0.0.1/",  # multicast
    "http://012.0.0.1/",  # 10.0.0.1 in octal
]


async def test_webhook_ssrf_to_private_address_is_refused(defaults: Stack) -> None:
    """Each private literal address answers 422 on `url`, at create and when a webhook is changed to it."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_everywhere(tenant, PRIVATE)
