"""An API app on a real NATS and a real, fresh PostgreSQL database per test."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings

ADMIN_KEY = "zh_admin_test_0123456789abcdef0123456789"


@dataclass
class Api:
    client: AsyncTestClient[Any]
    admin: dict[str, str]
    settings: ApiSettings

    async def tenant(self, name: str = "acme") -> tuple[dict[str, Any], dict[str, str]]:
        response = await self.client.post("/api/v1/tenants", json={"name": name}, headers=self.admin)
        assert response.status_code == 201, response.text
        body = response.json()
        return body, {"Authorization": f"Bearer {body['api_key']}"}

    async def session(self, auth: dict[str, str], name: str = "main") -> dict[str, Any]:
        response = await self.client.post("/api/v1/sessions", json={"name": name}, headers=auth)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
async def api(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = ApiSettings(
        nats_url=nats_url,
        database_url=database_url,
        data_dir=tmp_path,  # the key ring's generated key
        egress_allow="127.0.0.1",  # the webhooks of these tests point there
        admin_key=ADMIN_KEY,
        outbox_sweep_interval=0.2,
        outbox_grace=0.5,
        auth_failure_burst=10_000,  # tests try many bad keys from one address on purpose
        group_command_timeout=2.0,  # no dispatcher runs here: a write nobody answers fails fast
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield Api(client, {"Authorization": f"Bearer {ADMIN_KEY}"}, settings)
