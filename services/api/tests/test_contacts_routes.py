"""Contacts, blocklist and presence routes against a stand-in session-host on real NATS: the answers
mapped, the input refused by field, and every host outcome a named problem (never a 500)."""

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import nats
import pytest
from litestar.testing import AsyncTestClient

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings

from .conftest import ADMIN_KEY, Api

Answer = dict[str, Any] | None  # None: never answer


@pytest.fixture
async def api(nats_url: str, database_url: str) -> AsyncIterator[Api]:
    settings = ApiSettings(
        nats_url=nats_url, database_url=database_url, admin_key=ADMIN_KEY, host_request_timeout=0.5
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield Api(client, {"Authorization": f"Bearer {ADMIN_KEY}"}, settings)


@contextmanager
def fake_host(nats_url: str, session_id: str, answers: dict[str, Answer]) -> Iterator[list[tuple[str, Any]]]:
    """A session-host in its own thread (the test client blocks the test's loop) answering each op
    with its canned reply; yields the requests seen, as (op, body)."""
    seen: list[tuple[str, Any]] = []
    ready, done = threading.Event(), threading.Event()

    async def host() -> None:
        nc = await nats.connect(nats_url)

        async def reply(msg: Any) -> None:
            op = msg.subject.rsplit(".", 1)[-1]
            seen.append((op, json.loads(msg.data)))
            answer = answers.get(op)
            if answer is not None:
                await msg.respond(json.dumps(answer).encode())

        await nc.subscribe(f"zaphub.v1.host.{session_id}.*", cb=reply)
        await nc.flush()
        ready.set()
        await asyncio.to_thread(done.wait, 60)
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(host(),))
    thread.start()
    try:
        assert ready.wait(30)
        yield seen
    finally:
        done.set()
        thread.join(30)


async def connected(api: Api, database_url: str) -> tuple[dict[str, str], str]:
    _, auth = await api.tenant()
    session = await api.session(auth)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE sessions SET status = 'connected' WHERE id = $1", uuid.UUID(session["id"]))
    finally:
        await conn.close()
    return auth, session["id"]


OK = {"status": "ok", "host_id": "h1"}
CHECKS = {
    **OK,
    "results": [
        {
            "number": "5511988887777",
            "on_whatsapp": True,
            "jid": "5511988887777@s.whatsapp.net",
            "lid": "1@lid",
        },
        {"number": "999123456", "on_whatsapp": False},
    ],
}


async def test_contacts_check_maps_the_hosts_answer_and_caches_it(
    api: Api, nats_url: str, database_url: str
) -> None:
    """A check answers per number in order with + numbers; asked again within the minute, the host
    is not asked; bad numbers and too many are 422 naming `numbers`."""
    auth, session = await connected(api, database_url)
    path = f"/api/v1/sessions/{session}/contacts/check"
    with fake_host(nats_url, session, {"contacts_check": CHECKS}) as seen:
        body = {"numbers": ["+55 11 98888-7777", "+999123456"]}
        first = await api.client.post(path, json=body, headers=auth)
        again = await api.client.post(path, json=body, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == [
        {
            "number": "+5511988887777",
            "on_whatsapp": True,
            "jid": "5511988887777@s.whatsapp.net",
            "lid": "1@lid",
        },
        {"number": "+999123456", "on_whatsapp": False, "jid": None, "lid": None},
    ]
    assert again.json() == first.json()
    assert [op for op, _ in seen] == ["contacts_check"]
    assert seen[0][1]["numbers"] == ["5511988887777", "999123456"]

    for bad in ({"numbers": ["12ab"]}, {"numbers": [f"+55119{i:08d}" for i in range(51)]}, {"numbers": []}):
        refused = await api.client.post(path, json=bad, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].startswith("numbers")


async def test_contact_blocklist_and_presence_routes_ask_the_host(
    api: Api, nats_url: str, database_url: str
) -> None:
    """Profiles, the blocklist, block/unblock, presence and typing reach the host with normalised
    JIDs and answer its result; a bad JID or state is 422 naming the field."""
    auth, session = await connected(api, database_url)
    base = f"/api/v1/sessions/{session}"
    contact = {"jid": "5511988887777@s.whatsapp.net", "lid": "1@lid", "name": "Ana", "business": True}
    blocked = {**OK, "jids": ["5511988887777@s.whatsapp.net"]}
    answers: dict[str, Answer] = {
        "contact_info": {**OK, "contact": contact},
        "contacts_list": {**OK, "contacts": [contact]},
        "blocklist": blocked,
        "blocklist_update": blocked,
        "presence": OK,
        "chat_presence": OK,
        "mark_read": {**OK, "marked": ["3EB0A"]},
    }
    with fake_host(nats_url, session, answers) as seen:
        profile = await api.client.get(f"{base}/contacts/+5511988887777", headers=auth)
        known = await api.client.get(f"{base}/contacts", headers=auth)
        listed = await api.client.get(f"{base}/blocklist", headers=auth)
        block = await api.client.put(f"{base}/blocklist/5511988887777@s.whatsapp.net", headers=auth)
        unblock = await api.client.delete(f"{base}/blocklist/5511988887777", headers=auth)
        presence = await api.client.post(f"{base}/presence", json={"state": "available"}, headers=auth)
        typing = await api.client.post(
            f"{base}/chats/+5511988887777/presence", json={"state": "recording"}, headers=auth
        )
        read = await api.client.post(
            f"{base}/chats/5511988887777/read", json={"up_to": "3EB0A"}, headers=auth
        )
        read_all = await api.client.post(f"{base}/chats/5511988887777/read", headers=auth)
    assert profile.status_code == 200 and profile.json()["name"] == "Ana" and profile.json()["lid"] == "1@lid"
    assert known.status_code == 200 and [c["jid"] for c in known.json()] == [contact["jid"]]
    assert listed.json() == block.json() == unblock.json() == {"jids": blocked["jids"]}
    assert presence.status_code == typing.status_code == 202
    assert typing.json()["chat"] == "5511988887777@s.whatsapp.net"
    assert read.status_code == 200 and read.json()["marked"] == ["3EB0A"]
    assert read_all.status_code == 200, read_all.text
    bodies = dict(seen[:6])
    assert bodies["contact_info"]["jid"] == "5511988887777@s.whatsapp.net"
    assert [b["change"] for op, b in seen if op == "blocklist_update"] == ["block", "unblock"]
    assert [b["up_to"] for op, b in seen if op == "mark_read"] == ["3EB0A", None]

    for method, path, body, field in (
        ("get", f"{base}/contacts/abc", None, "jid"),
        ("get", f"{base}/contacts/120363000000000000@g.us", None, "jid"),
        ("put", f"{base}/blocklist/12", None, "jid"),
        ("post", f"{base}/presence", {"state": "away"}, "state"),
        ("post", f"{base}/chats/abc/presence", {"state": "composing"}, "chat"),
        ("post", f"{base}/chats/+5511988887777/presence", {"state": "typing"}, "state"),
    ):
        kwargs: dict[str, Any] = {"headers": auth} | ({"json": body} if body is not None else {})
        refused = await getattr(api.client, method)(path, **kwargs)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["errors"][0]["field"] == field


async def test_host_outcomes_are_named_problems(api: Api, nats_url: str, database_url: str) -> None:
    """Not connected is 409 session-not-connected (from the session row or the host); no host, or one
    that does not answer in time, is 503 with Retry-After; not on WhatsApp is 404; another tenant's
    session is 404."""
    _, auth = await api.tenant("other")
    idle = await api.session(auth)
    path = f"/api/v1/sessions/{idle['id']}/presence"
    not_connected = await api.client.post(path, json={"state": "available"}, headers=auth)
    assert not_connected.status_code == 409
    assert not_connected.json()["type"].endswith("/session-not-connected")

    owner, session = await connected(api, database_url)
    base = f"/api/v1/sessions/{session}"
    no_host = await api.client.get(f"{base}/blocklist", headers=owner)
    assert no_host.status_code == 503 and no_host.headers["retry-after"]
    foreign = await api.client.get(f"{base}/blocklist", headers=auth)
    assert foreign.status_code == 404

    answers: dict[str, Answer] = {
        "blocklist": None,
        "presence": {"status": "error", "reason": "session_not_connected", "detail": "offline"},
        "contact_info": {"status": "error", "reason": "recipient_not_on_whatsapp", "detail": "+999 no"},
        "contacts_list": {"status": "error", "reason": "transport_error", "detail": "boom"},
    }
    with fake_host(nats_url, session, answers):
        silent = await api.client.get(f"{base}/blocklist", headers=owner)
        offline = await api.client.post(f"{base}/presence", json={"state": "available"}, headers=owner)
        missing = await api.client.get(f"{base}/contacts/+999123456", headers=owner)
        failing = await api.client.get(f"{base}/contacts", headers=owner)
    assert silent.status_code == 503 and silent.headers["retry-after"]
    assert offline.status_code == 409 and offline.json()["type"].endswith("/session-not-connected")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-on-whatsapp")
    assert failing.status_code == 503 and failing.headers["retry-after"]
