"""Concurrent sends are stored in batches: every message keeps its own answer, seq and key."""

import asyncio
from typing import Any

import asyncpg

Api = Any  # the `api` fixture of conftest.py

TEXT = {"to": "+5511988887777", "type": "text", "text": "hi"}


async def test_concurrent_sends_to_one_session_take_consecutive_seqs(api: Api, database_url: str) -> None:
    """Many sends at once to a few sessions: each is accepted once, each session's seqs run 1..n."""
    _, auth = await api.tenant()
    sessions = [(await api.session(auth, f"s{i}"))["id"] for i in range(3)]

    async def send(i: int) -> Any:
        response = await api.client.post(
            f"/api/v1/sessions/{sessions[i % 3]}/messages", json=TEXT, headers=auth
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    ids = await asyncio.gather(*(send(i) for i in range(60)))
    assert len(set(ids)) == 60
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT session_id, seq FROM messages WHERE id = ANY($1::uuid[])", ids)
        history = await conn.fetchval(
            "SELECT count(*) FROM message_history WHERE message_id = ANY($1::uuid[]) AND status = 'queued'",
            ids,
        )
    finally:
        await conn.close()
    for session in sessions:
        seqs = sorted(r["seq"] for r in rows if str(r["session_id"]) == session)
        assert seqs == list(range(1, 21))
    assert history == 60


async def test_a_batch_keeps_each_request_apart(api: Api) -> None:
    """In one burst: repeats of a key get one message, another tenant's session is 404, the rest pass."""
    _, auth = await api.tenant("acme")
    _, other_auth = await api.tenant("globex")
    mine = (await api.session(auth))["id"]
    theirs = (await api.session(other_auth))["id"]

    async def post(session: str, key: str | None = None) -> Any:
        headers = auth | ({"Idempotency-Key": key} if key else {})
        return await api.client.post(f"/api/v1/sessions/{session}/messages", json=TEXT, headers=headers)

    answers = await asyncio.gather(
        *(post(mine, "order-1") for _ in range(5)),
        post(theirs),
        *(post(mine) for _ in range(5)),
    )
    keyed, foreign, plain = answers[:5], answers[5], answers[6:]
    assert {r.status_code for r in keyed} <= {202, 409}
    assert len({r.json()["id"] for r in keyed if r.status_code == 202}) == 1
    assert foreign.status_code == 404
    assert all(r.status_code == 202 for r in plain)
    listed = await api.client.get(f"/api/v1/sessions/{mine}/messages", headers=auth)
    assert len(listed.json()) == 6
    replay = await post(mine, "order-1")
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"


async def test_a_send_is_not_held_by_a_transaction_that_references_its_session(
    api: Api, database_url: str
) -> None:
    """The projector's chat upserts take the key-share lock on the session row that a foreign key
    takes. Accepting a send locks that row only against other accepts (NO KEY UPDATE), so it goes on
    while such a transaction is open; FOR UPDATE waited, and deadlocked with a projector batch that
    held one session and wanted another."""
    _, auth = await api.tenant()
    session = (await api.session(auth))["id"]
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM sessions WHERE id = $1 FOR KEY SHARE", session)
            post = api.client.post(f"/api/v1/sessions/{session}/messages", json=TEXT, headers=auth)
            response = await asyncio.wait_for(post, 10)  # blocked for good before the fix
        assert response.status_code == 202, response.text
    finally:
        await conn.close()
