"""Attack: a tenant points a webhook at the cloud metadata service to read instance credentials.
Defence: link-local and the providers' metadata addresses are refused at create and update."""

import httpx
from e2e.client import new_tenant
from security.webhook_attacks import refused_everywhere

from zaphub_devstack.testing import Stack

METADATA = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.169.254:80/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
]


async def test_webhook_ssrf_to_metadata_is_refused(defaults: Stack) -> None:
    """Each metadata address answers 422 on `url` at create, and at update of a valid webhook."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http:
        tenant = await new_tenant(http, defaults.admin_key)
        await refused_everywhere(tenant, METADATA)
