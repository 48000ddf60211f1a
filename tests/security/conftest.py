"""The stack the attack tests on the gateway's defaults share."""

from collections.abc import AsyncIterator

import pytest
from security.webhook_attacks import stack

from zaphub_devstack.testing import Stack


@pytest.fixture(scope="session")
async def defaults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The embedded stack on its defaults (ZAPHUB_EGRESS_ALLOW is empty), one for every module that
    only makes requests the defaults must refuse: each test has its own tenant, and one stack instead
    of one per module keeps the suite's time down."""
    async with stack(tmp_path_factory.mktemp("defaults")) as started:
        yield started
