"""The projector keeps PostgreSQL current from events on the bus, in batches, idempotently."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest

from zaphub_api.workers import projector
from zaphub_contracts import events as ev
from zaphub_contracts import subjects
from zaphub_runtime.codec import encode

Api = Any  # the `api` fixture of conftest.py
TEXT = {"to": "+5511988887777", "type": "text", "text": "hi"}


def envelope(message_id: uuid.UUID, tenant: str, session: str, kind: str, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "source": "/tests/projector",
        "time": at,
        "subject": f"messages/{message_id}",
        "tenantid": uuid.UUID(tenant),
        "sessionid": uuid.UUID(session),
    }


async def wait_status(api: Api, auth: dict[str, str], message_id: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        body: dict[str, Any] = (await api.client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} stayed {body['status']}, not {status}")


async def publish(nats_url: str, events: list[ev.EventBase]) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event in events:
            await js.publish(subjects.event(event.tenantid, event.sessionid, event.short), encode(event))
    finally:
        await nc.close()


async def test_a_burst_of_events_lands_once_in_order_of_status(api: Api, nats_url: str) -> None:
    """Sent, delivered and read of many messages at once (receipts by ZapHub id or by WhatsApp id only,
    some twice, one read before its delivered) leave each message read with one history entry each."""
    tenant, auth = await api.tenant()
    session = (await api.session(auth))["id"]
    ids = []
    for _ in range(20):
        response = await api.client.post(f"/api/v1/sessions/{session}/messages", json=TEXT, headers=auth)
        ids.append(response.json()["id"])
    now = datetime.now(UTC)
    events: list[ev.EventBase] = []
    for n, message_id in enumerate(ids):
        mid, wa = uuid.UUID(message_id), f"WA{n:04d}"
        sent = ev.MessageSentData(
            message_id=mid, whatsapp_id=wa, to="5511988887777@s.whatsapp.net", sent_at=now
        )
        # Every other receipt names only the WhatsApp id, as receipts of a real phone may.
        receipt = ev.MessageReceiptData(
            message_id=mid if n % 2 else None, whatsapp_id=wa, chat="5511988887777@s.whatsapp.net", at=now
        )
        read = ev.MessageRead(**envelope(mid, tenant["id"], session, "read", now), data=receipt)
        events += [
            ev.MessageSent(**envelope(mid, tenant["id"], session, "sent", now), data=sent),
            ev.MessageDelivered(**envelope(mid, tenant["id"], session, "delivered", now), data=receipt),
            read,
            read,  # a repeat of the same event
        ]
    late = ev.MessageDelivered(
        **envelope(uuid.UUID(ids[0]), tenant["id"], session, "delivered", now + timedelta(seconds=1)),
        data=ev.MessageReceiptData(
            message_id=uuid.UUID(ids[0]), whatsapp_id="WA0000", chat="5511988887777@s.whatsapp.net", at=now
        ),
    )
    await publish(nats_url, [*events, late])
    for message_id in ids:
        body = await wait_status(api, auth, message_id, "read")
    await asyncio.sleep(0.3)  # let the late delivered receipt land too
    first = (await api.client.get(f"/api/v1/messages/{ids[0]}", headers=auth)).json()
    assert first["status"] == "read"  # a late receipt never moves a message back
    assert [h["status"] for h in first["history"]].count("read") == 1
    assert sorted(h["status"] for h in first["history"]) == [
        "delivered",
        "delivered",
        "queued",
        "read",
        "sent",
    ]
    assert body["whatsapp_id"] == f"WA{len(ids) - 1:04d}"


async def test_a_projection_that_raises_does_not_stop_projection(
    api: Api, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event whose projection raises once (a bug, not a database error) is delivered again and lands,
    and the events published after it are projected too."""
    tenant, auth = await api.tenant()
    session = (await api.session(auth))["id"]
    message_id = (
        await api.client.post(f"/api/v1/sessions/{session}/messages", json=TEXT, headers=auth)
    ).json()["id"]
    project_connected = projector.PROJECTIONS[ev.SessionConnected]
    calls = 0

    async def raises_once(conn: Any, event: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in a projection")
        await project_connected(conn, event)

    monkeypatch.setitem(projector.PROJECTIONS, ev.SessionConnected, raises_once)
    now = datetime.now(UTC)
    mid = uuid.UUID(message_id)
    connected = ev.SessionConnected(
        **envelope(mid, tenant["id"], session, "connected", now),
        data=ev.SessionConnectedData(jid="5511900000000@s.whatsapp.net", host_id="h1"),
    )
    await publish(nats_url, [connected])
    for _ in range(100):
        if calls:
            break
        await asyncio.sleep(0.05)
    sent = ev.MessageSent(
        **envelope(mid, tenant["id"], session, "sent", now),
        data=ev.MessageSentData(
            message_id=mid, whatsapp_id="WA1", to="5511988887777@s.whatsapp.net", sent_at=now
        ),
    )
    await publish(nats_url, [sent])
    await wait_status(api, auth, message_id, "sent")
    for _ in range(100):
        body = (await api.client.get(f"/api/v1/sessions/{session}", headers=auth)).json()
        if body["status"] == "connected":
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "connected"
    assert calls >= 2


async def test_logout_clears_the_identity_so_the_session_can_pair_again(api: Api, nats_url: str) -> None:
    """After session.logged_out the session shows no jid, and pair-code no longer answers 409 as paired."""
    tenant, auth = await api.tenant()
    session = (await api.session(auth))["id"]
    now = datetime.now(UTC)
    base = {**envelope(uuid.uuid4(), tenant["id"], session, "", now), "subject": f"sessions/{session}"}
    connected = ev.SessionConnected(
        **base, data=ev.SessionConnectedData(jid="5511900000001@s.whatsapp.net", lid="1@lid", host_id="h1")
    )
    logged_out = ev.SessionLoggedOut(
        **{**base, "id": uuid.uuid4(), "time": now + timedelta(seconds=1)},
        data=ev.SessionLoggedOutData(reason="logged out by request"),
    )
    await publish(nats_url, [connected, logged_out])
    for _ in range(100):
        body = (await api.client.get(f"/api/v1/sessions/{session}", headers=auth)).json()
        if body["status"] == "logged_out":
            break
        await asyncio.sleep(0.05)
    assert (body["status"], body["jid"], body["lid"]) == ("logged_out", None, None)
    pair = await api.client.post(
        f"/api/v1/sessions/{session}/pair-code", json={"phone": "+5511900000001"}, headers=auth
    )
    assert pair.status_code == 503  # no host in this test; no longer 409 "already paired"


async def test_a_receipt_by_whatsapp_id_never_lands_on_an_inbound_message(api: Api, nats_url: str) -> None:
    """A receipt naming only a WhatsApp id moves the session's outbound message, not an inbound one
    (of this or another session) that carries the same id."""
    tenant, auth = await api.tenant()
    session = (await api.session(auth))["id"]
    now = datetime.now(UTC)
    inbound_id = uuid.uuid4()
    received = ev.MessageReceived(
        **envelope(inbound_id, tenant["id"], session, "received", now),
        data=ev.MessageReceivedData(
            message_id=inbound_id,
            whatsapp_id="WASAME",
            chat="5511988887777@s.whatsapp.net",
            sender="5511988887777@s.whatsapp.net",
            sent_at=now,
            content={"type": "text", "text": "hi"},  # type: ignore[arg-type]
        ),
    )
    read = ev.MessageRead(
        **envelope(inbound_id, tenant["id"], session, "read", now + timedelta(seconds=1)),
        data=ev.MessageReceiptData(whatsapp_id="WASAME", chat="5511988887777@s.whatsapp.net", at=now),
    )
    await publish(nats_url, [received, read])
    body = await wait_status(api, auth, str(inbound_id), "received")
    await asyncio.sleep(0.5)
    body = (await api.client.get(f"/api/v1/messages/{inbound_id}", headers=auth)).json()
    assert body["status"] == "received" and [h["status"] for h in body["history"]] == ["received"]
