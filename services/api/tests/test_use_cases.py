"""The use cases that change the bus and PostgreSQL together leave nothing half-done when the bus
refuses: the command stream is removed from the real NATS, so publishing a command fails."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from zaphub_contracts import streams
from zaphub_runtime.bus import Bus

from .conftest import Api

UNAVAILABLE = "https://zaphub.dev/problems/unavailable"


@asynccontextmanager
async def no_command_stream(nats_url: str) -> AsyncIterator[None]:
    """The bus answers nothing on command subjects (no stream holds them) until the block ends."""
    bus = await Bus.connect(nats_url, name="test-use-cases", source="/test")
    try:
        await bus.js.delete_stream(streams.CMD.name)
        yield
        await bus.ensure_stream(streams.CMD)
    finally:
        await bus.close()


async def test_a_session_whose_start_command_fails_is_503_and_not_kept(api: Api, nats_url: str) -> None:
    """Create-and-undo: the start command cannot be published, so the answer is 503 problem+json and
    no session row stays behind; the same name is accepted once the bus is back."""
    _, auth = await api.tenant()
    async with no_command_stream(nats_url):
        refused = await api.client.post("/api/v1/sessions", json={"name": "main"}, headers=auth)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == UNAVAILABLE
        listed = await api.client.get("/api/v1/sessions", headers=auth)
        assert listed.status_code == 200 and listed.json() == []
    created = await api.session(auth, "main")
    listed = await api.client.get("/api/v1/sessions", headers=auth)
    assert [s["id"] for s in listed.json()] == [created["id"]]


async def test_a_tenant_delete_that_cannot_stop_its_sessions_deletes_nothing(api: Api, nats_url: str) -> None:
    """TenantService.delete publishes its sessions' delete commands before touching a row: with the bus
    refusing it answers 503 and the tenant, its session and its key are all still there; deleted once
    the bus is back, the key no longer opens anything."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    tenant_url = f"/api/v1/tenants/{tenant['id']}"
    async with no_command_stream(nats_url):
        refused = await api.client.delete(tenant_url, headers=api.admin)
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == UNAVAILABLE
    assert (await api.client.get(tenant_url, headers=api.admin)).status_code == 200
    kept = await api.client.get(f"/api/v1/sessions/{session['id']}", headers=auth)
    assert kept.status_code == 200, kept.text

    assert (await api.client.delete(tenant_url, headers=api.admin)).status_code == 204
    assert (await api.client.get(tenant_url, headers=api.admin)).status_code == 404
    assert (await api.client.get("/api/v1/sessions", headers=auth)).status_code == 401
