"""Fixtures for browser tests: the API alone, as the dev stack runs it, on its own NATS and PostgreSQL."""

from collections.abc import AsyncIterator

import pytest

from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack


@pytest.fixture(scope="module")
async def api_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("api-stack")
    async with Stack(data_dir, services={"api": [console_script("zaphub-api")]}) as stack:
        yield stack
