"""Attack: a tenant sends media whose URL is an internal service on a private network, by literal
address. Defence: private, CGNAT, unique-local and other non-public ranges are refused at the API."""

import httpx
from e2e.client import new_tenant
from security.media_attacks import refused_media

from zaphub_devstack.testing import Stack

PRIVATE = [
    "http://10.0.0.1/",
    "http://10.255.255.254:8222/varz",  # a NATS monitoring port
    "http://172.16.0.1/a.pdf",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://167772161/",  # 10.0.0.1 as one number
    "http://0x0a000001/",  # and in hex
    "http://012.0.0.1/",  # and in octal
    "http://[fd12:3456::1]/",  # unique local
    "http://[fe80::1]/",  # link local
]


async def test_media_ssrf_to_private_address_is_refused(defaults: Stack) -> None:
    """Each private literal address answers 422 on `url` for a document and an image."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_media(tenant, PRIVATE)
