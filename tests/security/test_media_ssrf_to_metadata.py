"""Attack: a tenant sends a document or image whose URL is the cloud metadata service, so that the
session-host downloads instance credentials and delivers them to the attacker's own phone. Defence:
the API refuses link-local and metadata addresses, in every spelling, before the send is queued."""

import httpx
from e2e.client import new_tenant
from security.media_attacks import refused_media

from zaphub_devstack.testing import Stack

METADATA = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://0xa9fea9fe/",  # and in hex
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
]


async def test_media_ssrf_to_metadata_is_refused(defaults: Stack) -> None:
    """Each metadata URL answers 422 on `url` for a document and an image; nothing is queued."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_media(tenant, METADATA)
