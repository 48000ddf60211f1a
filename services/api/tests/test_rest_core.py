"""The REST core: tenants, keys, sessions, messages, stats and errors, against real NATS and PostgreSQL."""

import uuid
from typing import Any

Api = Any  # the `api` fixture of conftest.py


async def test_tenant_key_is_shown_once_and_authenticates(api: Api) -> None:
    """Creating a tenant returns its API key once; the key then authenticates tenant routes."""
    tenant, auth = await api.tenant()
    assert tenant["api_key"].startswith("zh_")
    listed = await api.client.get("/api/v1/tenants", headers=api.admin)
    assert all("api_key" not in t for t in listed.json())
    assert (await api.client.get("/api/v1/sessions", headers=auth)).status_code == 200


async def test_missing_or_wrong_key_is_401_problem_json(api: Api) -> None:
    """Requests without a key or with a wrong one get a 401 problem+json."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}):
        response = await api.client.get("/api/v1/sessions", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/unauthorized")


async def test_tenant_key_cannot_use_admin_routes(api: Api) -> None:
    """A tenant key on an admin route answers 403."""
    _, auth = await api.tenant()
    assert (await api.client.post("/api/v1/tenants", json={"name": "x"}, headers=auth)).status_code == 403


async def test_x_api_key_header_is_accepted(api: Api) -> None:
    """The key may come in X-API-Key instead of Authorization."""
    tenant, _ = await api.tenant()
    response = await api.client.get("/api/v1/sessions", headers={"X-API-Key": tenant["api_key"]})
    assert response.status_code == 200


async def test_another_tenants_session_and_message_are_404(api: Api) -> None:
    """A tenant never sees another tenant's session or message: both answer 404 with no data."""
    _, alice = await api.tenant("alice")
    _, bob = await api.tenant("bob")
    session = await api.session(alice, name="alice-secret")
    sent = await api.client.post(
        f"/api/v1/sessions/{session['id']}/messages",
        json={"to": "+5511999998888", "type": "text", "text": "hi"},
        headers=alice,
    )
    assert sent.status_code == 202
    for path in (
        f"/api/v1/sessions/{session['id']}",
        f"/api/v1/sessions/{session['id']}/messages",
        f"/api/v1/messages/{sent.json()['id']}",
    ):
        response = await api.client.get(path, headers=bob)
        assert response.status_code == 404, path
        assert set(response.json()) == {"type", "title", "status", "detail", "instance"}
        assert session["name"] not in response.json()["detail"]
    cross_send = await api.client.post(
        f"/api/v1/sessions/{session['id']}/messages",
        json={"to": "+5511999998888", "type": "text", "text": "x"},
        headers=bob,
    )
    assert cross_send.status_code == 404


async def test_send_is_accepted_queued_with_history(api: Api) -> None:
    """A valid text is accepted with 202 and shows status queued with a history entry."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    response = await api.client.post(
        f"/api/v1/sessions/{session['id']}/messages",
        json={"to": "+55 (11) 99999-8888", "type": "text", "text": "olá"},
        headers=auth,
    )
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    message = (await api.client.get(f"/api/v1/messages/{response.json()['id']}", headers=auth)).json()
    assert message["chat"] == "5511999998888@s.whatsapp.net"
    assert [h["status"] for h in message["history"]] == ["queued"]


async def test_bad_input_names_the_field_and_stores_nothing(api: Api) -> None:
    """Invalid fields answer 422 naming each field, and nothing is stored."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/messages"
    response = await api.client.post(path, json={"to": "abc", "type": "text", "text": ""}, headers=auth)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"to", "text"}
    assert (await api.client.get(path, headers=auth)).json() == []
    unknown_type = await api.client.post(path, json={"to": "+5511999998888", "type": "fax"}, headers=auth)
    assert unknown_type.status_code in (400, 422)
    not_json = await api.client.post(path, content=b"{", headers=auth | {"content-type": "application/json"})
    assert 400 <= not_json.status_code < 500


async def test_idempotency_key_returns_the_first_result(api: Api) -> None:
    """A repeated POST with the same Idempotency-Key returns the first message and stores no second one."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/messages"
    body = {"to": "+5511999998888", "type": "text", "text": "once"}
    first = await api.client.post(path, json=body, headers=auth | {"Idempotency-Key": "k1"})
    again = await api.client.post(path, json=body, headers=auth | {"Idempotency-Key": "k1"})
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert len((await api.client.get(path, headers=auth)).json()) == 1
    other = await api.client.post(
        path, json=body | {"text": "changed"}, headers=auth | {"Idempotency-Key": "k1"}
    )
    assert other.status_code == 409


async def test_stats_have_the_seed_shape(api: Api) -> None:
    """Stats answer capacity, sessions_by_status and limits as in the seed."""
    _, auth = await api.tenant()
    await api.session(auth)
    stats = (await api.client.get("/api/v1/sessions/stats", headers=auth)).json()
    assert set(stats["capacity"]) == {"active", "max", "available", "usage_percent"}
    assert {"connected", "qr_pending", "disconnected", "failed"} <= set(stats["sessions_by_status"])
    assert stats["limits"]["rate_per_minute"] == 60


async def test_unknown_ids_are_404(api: Api) -> None:
    """Unknown session and message ids answer 404 problem+json."""
    _, auth = await api.tenant()
    assert (await api.client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=auth)).status_code == 404
    assert (await api.client.get(f"/api/v1/messages/{uuid.uuid4()}", headers=auth)).status_code == 404


async def test_health_ready_and_openapi_are_served(api: Api) -> None:
    """Liveness, readiness and the OpenAPI document answer without a key."""
    assert (await api.client.get("/health")).status_code == 200
    ready = await api.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"nats": "ok", "postgres": "ok"}
    schema = (await api.client.get("/docs/openapi.json")).json()
    assert "/api/v1/sessions/{session_id}/messages" in schema["paths"]
