"""Tenant deletion, key listing and revocation, QR images, pairing, session commands, message filters
and metrics, against real NATS and PostgreSQL."""

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats

Api = Any  # the `api` fixture of conftest.py
QR = "2@y8Xq3Kd0H5cYbN2kq1cE9vZl,Jk4l0uZ1qv3m8VtM0cXJ3z0y0sQ=,8a9Yx0QwZzGv0m3c4p1k2l=,b7Hq0mX1="


async def _sql(database_url: str, query: str, *args: Any) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


async def test_revoked_key_stops_working_and_keys_list_by_prefix(api: Api) -> None:
    """A tenant holds several keys; the list shows prefixes only; a revoked key is refused at once."""
    tenant, first = await api.tenant()
    created = await api.client.post(
        f"/api/v1/tenants/{tenant['id']}/api-keys", json={"name": "ci"}, headers=api.admin
    )
    assert created.status_code == 201
    second = {"X-API-Key": created.json()["api_key"]}
    assert (await api.client.get("/api/v1/sessions", headers=second)).status_code == 200
    listed = await api.client.get(f"/api/v1/tenants/{tenant['id']}/api-keys", headers=api.admin)
    assert listed.status_code == 200
    assert [k["name"] for k in listed.json()] == ["default", "ci"]
    assert all(
        set(k) == {"id", "tenant_id", "name", "prefix", "created_at", "revoked_at"} for k in listed.json()
    )
    assert tenant["api_key"] not in listed.text and created.json()["api_key"] not in listed.text
    assert created.json()["api_key"].startswith(listed.json()[1]["prefix"])

    revoked = await api.client.delete(
        f"/api/v1/tenants/{tenant['id']}/api-keys/{created.json()['id']}", headers=api.admin
    )
    assert revoked.status_code == 204
    assert (await api.client.get("/api/v1/sessions", headers=second)).status_code == 401
    assert (await api.client.get("/api/v1/sessions", headers=first)).status_code == 200
    after = (await api.client.get(f"/api/v1/tenants/{tenant['id']}/api-keys", headers=api.admin)).json()
    assert after[1]["revoked_at"] is not None
    other, _ = await api.tenant("other")
    wrong_tenant = await api.client.delete(
        f"/api/v1/tenants/{other['id']}/api-keys/{after[0]['id']}", headers=api.admin
    )
    assert wrong_tenant.status_code == 404


async def test_deleting_a_tenant_removes_everything_and_stops_its_sessions(api: Api, nats_url: str) -> None:
    """Deleting a tenant publishes a delete command per session, then its key, sessions and data are gone."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.subscribe(f"zaphub.v1.cmd.session.delete.{tenant['id']}.>")
        await nc.flush()
        response = await api.client.delete(f"/api/v1/tenants/{tenant['id']}", headers=api.admin)
        assert response.status_code == 204
        msg = await sub.next_msg(timeout=10)
        assert msg.subject.endswith(session["id"])
    finally:
        await nc.close()
    assert (await api.client.get(f"/api/v1/tenants/{tenant['id']}", headers=api.admin)).status_code == 404
    assert (await api.client.get("/api/v1/sessions", headers=auth)).status_code == 401
    again = await api.client.delete(f"/api/v1/tenants/{tenant['id']}", headers=api.admin)
    assert again.status_code == 404


async def test_qr_is_served_as_json_png_or_svg_by_accept(api: Api, database_url: str) -> None:
    """The QR route answers JSON by default, and a PNG or SVG rendering by Accept."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/qr"
    assert (await api.client.get(path, headers=auth)).status_code == 404  # no QR shown yet
    await _sql(
        database_url,
        "UPDATE sessions SET qr = $1, status = 'qr_pending' WHERE id = $2",
        QR,
        uuid.UUID(session["id"]),
    )

    as_json = await api.client.get(path, headers=auth)
    assert as_json.status_code == 200 and as_json.json()["qr"] == QR
    png = await api.client.get(path, headers=auth | {"Accept": "image/png"})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = await api.client.get(path, headers=auth | {"Accept": "image/svg+xml"})
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    preferred = await api.client.get(path, headers=auth | {"Accept": "image/svg+xml;q=0.5, image/png"})
    assert preferred.headers["content-type"] == "image/png"


async def test_pair_code_without_a_host_is_a_clear_problem(api: Api, database_url: str) -> None:
    """Pairing answers 503 naming the missing host, 409 once paired, 422 for a bad phone."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/pair-code"
    bad = await api.client.post(path, json={"phone": "12ab"}, headers=auth)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["phone"]
    no_host = await api.client.post(path, json={"phone": "+55 11 99999-8888"}, headers=auth)
    assert no_host.status_code == 503
    assert no_host.headers["content-type"].startswith("application/problem+json")
    assert "session-host" in no_host.json()["detail"]
    await _sql(
        database_url,
        "UPDATE sessions SET jid = '5511999998888@s.whatsapp.net' WHERE id = $1",
        uuid.UUID(session["id"]),
    )
    paired = await api.client.post(path, json={"phone": "+5511999998888"}, headers=auth)
    assert paired.status_code == 409
    assert "already paired" in paired.json()["detail"]


async def test_pair_code_returns_the_hosts_code(api: Api, nats_url: str) -> None:
    """The API asks the owning host over NATS with the normalised phone and returns its code."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    seen: list[bytes] = []
    ready, done = threading.Event(), threading.Event()

    async def host() -> None:
        # The test client blocks this loop while the app runs, so the fake host has its own loop.
        nc = await nats.connect(nats_url)

        async def reply(msg: Any) -> None:
            seen.append(msg.data)
            await msg.respond(b'{"status": "ok", "host_id": "h1", "code": "ABCD1234"}')

        await nc.subscribe(f"zaphub.v1.host.{session['id']}.pair_code", cb=reply)
        await nc.flush()
        ready.set()
        await asyncio.to_thread(done.wait, 60)
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(host(),))
    thread.start()
    try:
        assert await asyncio.to_thread(ready.wait, 30)
        response = await api.client.post(
            f"/api/v1/sessions/{session['id']}/pair-code", json={"phone": "+55 (11) 99999-8888"}, headers=auth
        )
    finally:
        done.set()
        await asyncio.to_thread(thread.join, 30)
    assert response.status_code == 200, response.text
    assert response.json() == {"session_id": session["id"], "phone": "5511999998888", "code": "ABCD1234"}
    assert b'"phone":"5511999998888"' in seen[0]


async def test_restart_and_logout_publish_commands(api: Api, nats_url: str) -> None:
    """Restart and logout answer 202 and publish the session command; another tenant gets 404."""
    tenant, auth = await api.tenant()
    _, other = await api.tenant("other")
    session = await api.session(auth)
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.subscribe(f"zaphub.v1.cmd.session.*.{tenant['id']}.{session['id']}")
        await nc.flush()
        for action in ("restart", "logout"):
            path = f"/api/v1/sessions/{session['id']}/{action}"
            assert (await api.client.post(path, headers=other)).status_code == 404
            response = await api.client.post(path, headers=auth)
            assert response.status_code == 202
            assert response.json() == {"session_id": session["id"], "action": action, "status": "accepted"}
            msg = await sub.next_msg(timeout=10)
            assert msg.subject.split(".")[4] == action
    finally:
        await nc.close()


async def test_messages_list_filters_by_direction_status_and_since(api: Api) -> None:
    """The messages list pages and filters by direction, status and creation time."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/messages"
    for text in ("one", "two", "three"):
        body = {"to": "+5511999998888", "type": "text", "text": text}
        assert (await api.client.post(path, json=body, headers=auth)).status_code == 202

    async def texts(**params: str) -> list[str]:
        response = await api.client.get(path, params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [m["content"]["text"] for m in response.json()]

    assert await texts() == ["three", "two", "one"]
    assert await texts(limit="2", offset="1") == ["two", "one"]
    assert await texts(direction="outbound", status="queued") == ["three", "two", "one"]
    assert await texts(direction="inbound") == []
    assert await texts(status="sent") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await texts(since=future) == []
    assert len(await texts(since=past)) == 3
    bad = await api.client.get(path, params={"since": "yesterday"}, headers=auth)
    assert bad.status_code in (400, 422)
    assert "since" in bad.text


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    """/metrics answers without a key and counts requests by route template and status."""
    _, auth = await api.tenant()
    await api.client.get(f"/api/v1/sessions/{uuid.uuid4()}", headers=auth)
    await asyncio.sleep(0)
    metrics = await api.client.get("/metrics")
    assert metrics.status_code == 200
    lines = [line for line in metrics.text.splitlines() if line.startswith("zaphub_requests_total{")]
    hit = [
        line
        for line in lines
        if 'path="/api/v1/sessions/{session_id}"' in line and 'status_code="404"' in line
    ]
    assert hit, lines
    assert "zaphub_request_duration_seconds_bucket" in metrics.text
