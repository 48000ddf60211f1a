"""A dev stack for benchmarks: the real services on the simulator, in a throw-away data dir."""

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from zaphub_devstack.testing import Stack

# Benchmarks measure the pipeline, not the limits: every tenant may send as much as it likes.
UNLIMITED = {
    "ZAPHUB_RATE_PER_MINUTE": "1000000",
    "ZAPHUB_RATE_PER_HOUR": "10000000",
    "ZAPHUB_RATE_PER_DAY": "100000000",
    "ZAPHUB_TRANSPORT": "sim",
    "ZAPHUB_SIM_PAIR_DELAY": "0.2",
    "ZAPHUB_LOG_LEVEL": "WARNING",
    # The loads create some 150 sessions on the one host; its default capacity is 100.
    "ZAPHUB_MAX_CONCURRENT_SESSIONS": "1000",
}


@contextlib.asynccontextmanager
async def bench_stack(**env: str) -> AsyncIterator[Stack]:
    data_dir = Path(tempfile.mkdtemp(prefix="zaphub-bench-"))
    try:
        async with Stack(data_dir, env=UNLIMITED | env) as stack:
            yield stack
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def tenant_with_sessions(
    stack: Stack, sessions: int, name: str = "bench", **fields: Any
) -> tuple[str, list[str]]:
    """A new tenant's API key and the ids of its connected sessions; `fields` go into the tenant
    (`rate_limits`, `max_queued`, ...)."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        admin = {"Authorization": f"Bearer {stack.admin_key}"}
        created = await http.post("/api/v1/tenants", json={"name": name, **fields}, headers=admin)
        created.raise_for_status()
        key = created.json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        ids = [
            (await http.post("/api/v1/sessions", json={"name": f"s{i}"}, headers=auth)).json()["id"]
            for i in range(sessions)
        ]
        for session_id in ids:
            for _ in range(300):
                if (await http.get(f"/api/v1/sessions/{session_id}", headers=auth)).json()[
                    "status"
                ] == "connected":
                    break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"session {session_id} of tenant {name} not connected within 30 s")
        return key, ids


async def add_webhook(stack: Stack, key: str, url: str, events: list[str]) -> tuple[str, str]:
    """A webhook of the tenant with `key`: its id and signing secret."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        response = await http.post(
            "/api/v1/webhooks",
            json={"url": url, "events": events},
            headers={"Authorization": f"Bearer {key}"},
        )
        response.raise_for_status()
        return str(response.json()["id"]), str(response.json()["secret"])


async def deactivate_webhook(stack: Stack, key: str, webhook_id: str) -> None:
    """`active: false`: its waiting deliveries are dropped as the dispatcher reaches them."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {key}"}
        response = await http.patch(f"/api/v1/webhooks/{webhook_id}", json={"active": False}, headers=auth)
        response.raise_for_status()
