"""Webhooks over REST: CRUD, validation, tenant isolation, the secret shown once, the KV mirror the
dispatcher reads, and the delivery log with redelivery."""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import nats
import pytest

from zaphub_contracts import events as ev
from zaphub_contracts import streams, subjects
from zaphub_contracts.webhooks import AttemptStatus, WebhookAttempt, WebhookConfig, WebhookDelivery
from zaphub_runtime.codec import encode

Api = Any  # the `api` fixture of conftest.py
HOOK = {"url": "https://example.com/hooks/zaphub", "events": ["message.received", "message.sent"]}


async def create(api: Api, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await api.client.post("/api/v1/webhooks", json=HOOK | body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_secret_is_generated_and_shown_only_on_creation(api: Api) -> None:
    """Creating a webhook answers its secret (generated when absent); reads never show it again."""
    _, auth = await api.tenant()
    created = await create(api, auth, description="orders")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["events"] == ["message.received", "message.sent"]
    assert created["active"] is True
    chosen = await create(api, auth, secret="my-own-secret-of-some-length")
    assert chosen["secret"] == "my-own-secret-of-some-length"
    one = (await api.client.get(f"/api/v1/webhooks/{created['id']}", headers=auth)).json()
    listed = (await api.client.get("/api/v1/webhooks", headers=auth)).json()
    assert "secret" not in one and all("secret" not in w for w in listed)
    assert [w["id"] for w in listed] == [created["id"], chosen["id"]]
    assert one["description"] == "orders"


async def test_update_and_delete_a_webhook(api: Api) -> None:
    """PATCH changes only the given fields; DELETE removes the webhook."""
    _, auth = await api.tenant()
    created = await create(api, auth)
    url = f"/api/v1/webhooks/{created['id']}"
    response = await api.client.patch(url, json={"events": ["*"], "active": False}, headers=auth)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["events"] == ["*"] and updated["active"] is False
    assert updated["url"] == HOOK["url"]
    assert (await api.client.delete(url, headers=auth)).status_code == 204
    assert (await api.client.get(url, headers=auth)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://user:pw@example.com/"}, "url"),
        ({"url": "http://example.com:99999/"}, "url"),
        ({"events": ["message.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"secret": "short"}, "secret"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_webhook_input_is_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    """Bad input answers a 422 problem that names the offending field, and stores nothing."""
    _, auth = await api.tenant()
    response = await api.client.post("/api/v1/webhooks", json=HOOK | body, headers=auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(field in e["field"] for e in problem["errors"]), problem
    assert (await api.client.get("/api/v1/webhooks", headers=auth)).json() == []


async def test_another_tenants_webhook_is_404(api: Api) -> None:
    """A tenant can neither see, change, delete nor read the deliveries of another tenant's webhook."""
    _, alice = await api.tenant("alice")
    _, bob = await api.tenant("bob")
    hook = await create(api, alice)
    url = f"/api/v1/webhooks/{hook['id']}"
    assert (await api.client.get(url, headers=bob)).status_code == 404
    assert (await api.client.patch(url, json={"active": False}, headers=bob)).status_code == 404
    assert (await api.client.delete(url, headers=bob)).status_code == 404
    assert (await api.client.get(f"{url}/deliveries", headers=bob)).status_code == 404
    redeliver = f"{url}/deliveries/{uuid.uuid4()}/redeliver"
    assert (await api.client.post(redeliver, headers=bob)).status_code == 404
    assert (await api.client.get("/api/v1/webhooks", headers=bob)).json() == []
    assert (await api.client.get(url, headers=alice)).json()["active"] is True


async def test_webhooks_are_mirrored_to_the_bucket_the_dispatcher_reads(api: Api, nats_url: str) -> None:
    """Create, update and delete show up in the webhooks bucket, keyed <tenant>.<webhook>, with the secret."""
    tenant, auth = await api.tenant()
    hook = await create(api, auth)
    nc = await nats.connect(nats_url)
    try:
        bucket = await nc.jetstream().key_value(streams.WEBHOOKS_BUCKET.name)
        key = f"{tenant['id']}.{hook['id']}"
        entry = await bucket.get(key)
        config = WebhookConfig.model_validate_json(entry.value or b"")
        assert config.secret == hook["secret"] and config.wants("message.sent")
        assert not config.wants("session.qr")
        await api.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=auth)
        entry = await bucket.get(key)
        assert not WebhookConfig.model_validate_json(entry.value or b"").active
        await api.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=auth)
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await bucket.get(key)
    finally:
        await nc.close()


async def test_delivery_log_lists_attempts_and_redeliver_queues_the_event_again(
    api: Api, nats_url: str
) -> None:
    """Attempt records from the bus become a paged delivery log; redeliver queues the original event."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    hook = await create(api, auth)
    tenant_id, session_id, hook_id = uuid.UUID(tenant["id"]), uuid.UUID(session["id"]), uuid.UUID(hook["id"])
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        event = ev.MessageSent(
            id=uuid.uuid4(),
            source="/test",
            time=datetime.now(UTC),
            tenantid=tenant_id,
            sessionid=session_id,
            data=ev.MessageSentData(
                message_id=uuid.uuid4(), whatsapp_id="3EB0X", to="1@s.whatsapp.net", sent_at=datetime.now(UTC)
            ),
        )
        ack = await js.publish(subjects.event(tenant_id, session_id, event.short), encode(event))
        delivery_id = uuid.uuid4()
        for attempt, status, code in ((1, AttemptStatus.RETRYING, 500), (2, AttemptStatus.FAILED, 503)):
            record = WebhookAttempt(
                delivery_id=delivery_id,
                webhook_id=hook_id,
                tenant_id=tenant_id,
                session_id=session_id,
                event_id=event.id,
                event_type=event.short,
                event_seq=ack.seq,
                attempt=attempt,
                status=status,
                response_code=code,
                error=f"HTTP {code}",
                at=datetime.now(UTC),
            )
            await js.publish(subjects.webhook_attempt(tenant_id, hook_id), encode(record))
        deliveries_url = f"/api/v1/webhooks/{hook_id}/deliveries"

        async def failed() -> list[dict[str, Any]] | None:
            found = (await api.client.get(deliveries_url, headers=auth)).json()
            return found if found and found[0]["attempts"] == 2 else None

        (delivery,) = await wait_for(failed, "both attempts to be logged")
        assert delivery["status"] == "failed" and delivery["last_response_code"] == 503
        assert delivery["event_type"] == "message.sent" and delivery["event_id"] == str(event.id)
        assert [a["response_code"] for a in delivery["attempt_log"]] == [500, 503]
        assert (await api.client.get(f"{deliveries_url}?status=succeeded", headers=auth)).json() == []

        queued = await nc.subscribe(subjects.webhook_delivery(tenant_id, hook_id))
        await nc.flush()
        response = await api.client.post(f"{deliveries_url}/{delivery_id}/redeliver", headers=auth)
        assert response.status_code == 202, response.text
        assert response.json()["next_attempt"] == 3
        msg = await queued.next_msg(timeout=10)
        again = WebhookDelivery.model_validate_json(msg.data)
        assert again.delivery_id == delivery_id and again.first_attempt == 3
        assert json.loads(again.body)["id"] == str(event.id)
        listed = (await api.client.get(deliveries_url, headers=auth)).json()
        assert listed[0]["status"] == "pending"
    finally:
        await nc.close()
