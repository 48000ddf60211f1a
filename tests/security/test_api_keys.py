"""Attacks on API keys against real API processes: guessing keys from one address, and an admin key
anyone could guess."""

import asyncio
import os
import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack


@pytest.fixture(scope="module")
async def api_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("keys")
    env = {"ZAPHUB_AUTH_FAILURE_BURST": "10", "ZAPHUB_AUTH_FAILURE_RATE": "0.2"}
    async with Stack(data_dir, env=env, services={"api": [console_script("zaphub-api")]}) as stack:
        yield stack


def guess() -> str:
    return f"zh_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


async def test_repeated_bad_keys_are_throttled(api_stack: Stack) -> None:
    """After its burst of failed keys an address gets 429 with Retry-After, even for a right guess; the
    admin key still gets in from there, and another address is not affected."""
    bad = [guess() for _ in range(30)]
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        answers = [
            (await http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {key}"})) for key in bad
        ]
        admin = await http.get("/api/v1/tenants", headers={"Authorization": f"Bearer {api_stack.admin_key}"})
    statuses = [r.status_code for r in answers]
    assert statuses[:10] == [401] * 10, statuses
    assert set(statuses[10:]) == {429}, statuses
    throttled = answers[-1]
    assert throttled.json()["type"].endswith("/problems/too-many-auth-failures")
    assert int(throttled.headers["retry-after"]) >= 1
    assert admin.status_code == 200
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30, transport=other) as http:
        response = await http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {guess()}"})
    assert response.status_code == 401


@pytest.mark.parametrize("key", ["zh_admin_short", "zh_admin_CHANGE_ME", "zh_admin_CHANGE_ME_" + "x" * 40])
async def test_guessable_admin_key_stops_the_api_at_start(key: str) -> None:
    """An admin key under 32 characters or a shipped placeholder: zaphub-api exits at once, saying why."""
    env = {**os.environ, "ZAPHUB_ADMIN_KEY": key}
    proc = await asyncio.create_subprocess_exec(
        console_script("zaphub-api"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert b"ZAPHUB_ADMIN_KEY" in stderr, stderr
