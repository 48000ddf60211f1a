"""The outbox sweeper on a real NATS and PostgreSQL: a row it cannot publish does not stop the others."""

import asyncio
import json
import uuid
from typing import Any

import asyncpg

SEND = {"type": "text", "to": "5511999999999", "text": "hi"}


async def test_poison_row_is_failed_and_the_sweep_goes_on(api: Any, database_url: str) -> None:
    """An unpublished message whose content no longer makes a command is failed with a reason and
    counted; the message after it is still published."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    db = await asyncpg.connect(database_url)
    try:
        session_id = uuid.UUID(session["id"])
        tenant_id = await db.fetchval("SELECT tenant_id FROM sessions WHERE id = $1", session_id)
        poison, good = uuid.uuid4(), uuid.uuid4()
        for message_id, seq, content, age in (
            (poison, 1, {"type": "no-such-type"}, "2 minutes"),
            (good, 2, SEND, "1 minute"),
        ):
            await db.execute(
                "INSERT INTO messages (id, tenant_id, session_id, direction, seq, chat, type, content,"
                " status, created_at) VALUES ($1, $2, $3, 'outbound', $4, $5, 'text', $6, 'queued',"
                f" now() - interval '{age}')",
                message_id,
                tenant_id,
                session_id,
                seq,
                SEND["to"],
                json.dumps(content),
            )
        for _ in range(100):
            published = await db.fetchval("SELECT published_at FROM messages WHERE id = $1", good)
            if published is not None:
                break
            await asyncio.sleep(0.1)
        assert published is not None, "the sweep stopped at the poison row"
        failed = await api.client.get(f"/api/v1/messages/{poison}", headers=auth)
        assert failed.json()["status"] == "failed", failed.text
        assert failed.json()["failure_reason"] == "invalid_payload"
        assert api.client.app.state.collaborators.outbox.poisoned == 1
    finally:
        await db.close()
