"""Cross-service fixtures: a whole dev stack on the simulator, shared by the end-to-end tests of a module."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zaphub_devstack.testing import Stack


@pytest.fixture(scope="module")
async def sim_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("stack")
    async with Stack(data_dir, env={"ZAPHUB_TRANSPORT": "sim", "ZAPHUB_SIM_PAIR_DELAY": "0.5"}) as stack:
        yield stack
