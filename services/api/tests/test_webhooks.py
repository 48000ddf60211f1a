"""Webhooks over REST: CRUD, validation, tenant isolation, the secret shown once, the KV mirror the
dispatcher reads, and the delivery log with redelivery."""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from zaphub_api.store.webhooks import WebhookStore
from zaphub_contracts import events as ev
from zaphub_contracts import streams, subjects
from zaphub_contracts.webhooks import (
    AttemptStatus,
    WebhookAttempt,
    WebhookConfig,
    WebhookDelivery,
    secret_aad,
    webhook_key,
)
from zaphub_runtime.codec import encode
from zaphub_runtime.keyring import SecretRefused, ring_from_settings
from zaphub_runtime.settings import CommonSettings

Api = Any  # the `api` fixture of conftest.py
HOOK = {"url": "http://127.0.0.1:9/hooks/zaphub", "events": ["message.received", "message.sent"]}


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


async def test_webhooks_are_mirrored_to_the_bucket_the_dispatcher_reads(
    api: Api, nats_url: str, tmp_path: Path
) -> None:
    """Create, update and delete show up in the webhooks bucket, keyed <tenant>.<webhook>, with the secret
    sealed by the key ring for that key only (never in plain text)."""
    tenant, auth = await api.tenant()
    hook = await create(api, auth)
    nc = await nats.connect(nats_url)
    try:
        bucket = await nc.jetstream().key_value(streams.WEBHOOKS_BUCKET.name)
        key = f"{tenant['id']}.{hook['id']}"
        entry = await bucket.get(key)
        config = WebhookConfig.model_validate_json(entry.value or b"")
        assert hook["secret"].encode() not in (entry.value or b"") and config.sealed_secret
        assert "secret" not in json.loads(entry.value or b"{}")  # an older dispatcher keeps it out
        ring = ring_from_settings(CommonSettings(data_dir=tmp_path), machine_key=True)
        aad = secret_aad(config.tenant_id, config.id)
        assert ring.decrypt_text(config.sealed_secret, aad) == hook["secret"]
        with pytest.raises(SecretRefused):
            ring.decrypt_text(config.sealed_secret, secret_aad(config.tenant_id, uuid.uuid4()))
        assert config.wants("message.sent")
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


async def test_an_attempt_repeated_after_a_crash_logs_its_newer_outcome(api: Api, nats_url: str) -> None:
    """A dispatcher killed after recording attempt 1 as retrying, but before acking, gets the delivery
    again and POSTs attempt 1 once more: its success is logged (the record's id names the outcome,
    so it is not dropped as a duplicate) and the delivery reads succeeded."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    hook = await create(api, auth)
    tenant_id, session_id, hook_id = uuid.UUID(tenant["id"]), uuid.UUID(session["id"]), uuid.UUID(hook["id"])
    delivery_id, event_id = uuid.uuid4(), uuid.uuid4()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for status, code in ((AttemptStatus.RETRYING, 503), (AttemptStatus.SUCCEEDED, 200)):
            record = WebhookAttempt(
                delivery_id=delivery_id,
                webhook_id=hook_id,
                tenant_id=tenant_id,
                session_id=session_id,
                event_id=event_id,
                event_type="message.sent",
                attempt=1,
                status=status,
                response_code=code,
                at=datetime.now(UTC),
            )
            msg_id = f"{delivery_id}:attempt:1:{status.value}"  # as the dispatcher names it
            await js.publish(
                subjects.webhook_attempt(tenant_id, hook_id), encode(record), headers={"Nats-Msg-Id": msg_id}
            )
        deliveries_url = f"/api/v1/webhooks/{hook_id}/deliveries"

        async def succeeded() -> list[dict[str, Any]] | None:
            found = (await api.client.get(deliveries_url, headers=auth)).json()
            return found if found and found[0]["status"] == "succeeded" else None

        (delivery,) = await wait_for(succeeded, "the repeated attempt's success to be logged")
        assert delivery["attempts"] == 1 and delivery["last_response_code"] == 200
        assert [(a["status"], a["response_code"]) for a in delivery["attempt_log"]] == [("succeeded", 200)]
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:9/",
        "http://localhost:9/",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/",
        "http://2130706434/",  # 127.0.0.2 spelled as one number
        "https://name.invalid/hook",  # does not resolve
    ],
)
async def test_webhook_url_refused_by_the_egress_policy_is_422_on_url(api: Api, url: str) -> None:
    """Create and update refuse a URL whose address (literal or resolved) the egress policy refuses."""
    _, auth = await api.tenant()
    response = await api.client.post("/api/v1/webhooks", json=HOOK | {"url": url}, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    hook = await create(api, auth)
    response = await api.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": url}, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["url"]


async def test_webhooks_beyond_the_tenant_maximum_are_409(api: Api) -> None:
    """Concurrent creates stop at the per-tenant maximum (10) with their own problem type."""
    _, auth = await api.tenant()
    answers = await asyncio.gather(
        *(api.client.post("/api/v1/webhooks", json=HOOK, headers=auth) for _ in range(14))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 10 + [409] * 4
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["type"].endswith("/webhook-limit-reached")
    assert len((await api.client.get("/api/v1/webhooks", headers=auth)).json()) == 10


async def test_reconcile_keeps_webhooks_created_meanwhile_and_drops_a_deleted_tenants(
    api: Api, nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """A reconcile racing creates (as another API process starting) keeps every created webhook in the
    bucket; deleting a tenant removes its webhooks from the bucket."""
    tenants = [await api.tenant(f"t{i}") for i in range(3)]
    nc = await nats.connect(nats_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        bucket = await nc.jetstream().key_value(streams.WEBHOOKS_BUCKET.name)
        ring = ring_from_settings(CommonSettings(data_dir=tmp_path), machine_key=True)
        store = WebhookStore(pool, bucket, ring)

        async def creates(auth: dict[str, str]) -> list[dict[str, Any]]:
            return [await create(api, auth) for _ in range(5)]

        async def reconciles() -> None:
            for _ in range(10):
                await store.reconcile()

        made, _ = await asyncio.gather(asyncio.gather(*(creates(auth) for _, auth in tenants)), reconciles())
        keys = set(await bucket.keys())
        wanted = {
            webhook_key(uuid.UUID(t["id"]), uuid.UUID(h["id"]))
            for (t, _), hooks in zip(tenants, made, strict=True)
            for h in hooks
        }
        assert wanted <= keys
        gone, _ = tenants[0]
        deleted = await api.client.delete(f"/api/v1/tenants/{gone['id']}", headers=api.admin)
        assert deleted.status_code == 204
        left = set(await bucket.keys())
        assert not {k for k in left if k.startswith(gone["id"])}
        assert {k for k in wanted if not k.startswith(gone["id"])} <= left
    finally:
        await pool.close()
        await nc.close()
