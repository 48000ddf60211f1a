"""Group routes at the API edge: how a host's answers to reads, the dispatcher's answers to write
commands, or their absence, become HTTP answers."""

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import nats
from pydantic import BaseModel

from zaphub_contracts import subjects
from zaphub_contracts.groups import CommandRateLimited, GroupCommand, GroupReply, UpdateGroup
from zaphub_contracts.host import HostError
from zaphub_runtime.bus import MSG_ID

Api = Any  # the `api` fixture of conftest.py
GROUP = "120363025246125486@g.us"


async def test_group_reads_without_a_host_are_503_with_retry_after(api: Api) -> None:
    """No session-host holds the session: 503 with Retry-After, never a 500."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    response = await api.client.get(f"/api/v1/sessions/{session['id']}/groups/{GROUP}", headers=auth)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["content-type"].startswith("application/problem+json")


@dataclass
class FakeDispatcher:
    """Stands in for the dispatcher on the bus: sees each group command of one session as it is
    published to ZAPHUB_CMD and answers its inbox from a script, in turn."""

    answers: list[BaseModel]
    commands: list[tuple[GroupCommand, str]] = field(default_factory=list)  # with its Nats-Msg-Id


@contextmanager
def dispatcher(
    nats_url: str, tenant_id: str, session_id: str, *answers: BaseModel
) -> Iterator[FakeDispatcher]:
    fake = FakeDispatcher(list(answers))
    ready, done = threading.Event(), threading.Event()

    async def serve() -> None:
        nc = await nats.connect(nats_url)

        async def on_command(msg: Any) -> None:
            command = GroupCommand.model_validate_json(msg.data)
            fake.commands.append((command, (msg.headers or {}).get(MSG_ID, "")))
            answer = fake.answers[len(fake.commands) - 1]
            await nc.publish(command.reply_to, answer.model_dump_json().encode())

        await nc.subscribe(subjects.group_command(UUID(tenant_id), UUID(session_id)), cb=on_command)
        await nc.flush()
        ready.set()
        await asyncio.to_thread(done.wait, 60)
        await nc.close()

    # Its own thread and loop, as the app's requests are served apart from the test's.
    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(30)
        yield fake
    finally:
        done.set()
        thread.join(30)


async def test_the_dispatcher_s_answers_become_the_group_403_and_404(api: Api, nats_url: str) -> None:
    """A write is one command carrying the typed action, its command id as Nats-Msg-Id, and an expiry;
    a host's not_group_admin is a 403 naming the permission, group_not_found a 404, and a group reply
    the group."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    answers = [
        HostError(reason="not_group_admin", detail="change_settings: only admins may change settings"),
        HostError(reason="group_not_found", detail="not in it"),
        GroupReply(host_id="h1", group={"jid": GROUP, "subject": "Renamed"}),  # type: ignore[arg-type]
    ]
    url = f"/api/v1/sessions/{session['id']}/groups/{GROUP}"
    with dispatcher(nats_url, tenant["id"], session["id"], *answers) as fake:
        forbidden = await api.client.patch(url, json={"announce": True}, headers=auth)
        missing = await api.client.patch(url, json={"subject": "x"}, headers=auth)
        renamed = await api.client.patch(url, json={"subject": "Renamed"}, headers=auth)
    assert forbidden.status_code == 403, forbidden.text
    body = json.loads(forbidden.text)
    assert body["type"] == "https://zaphub.dev/problems/group-admin-required/change_settings"
    assert body["permission"] == "change_settings"
    assert missing.status_code == 404, missing.text
    assert renamed.status_code == 200 and renamed.json()["subject"] == "Renamed"
    command, msg_id = fake.commands[0]
    assert command.action == UpdateGroup(group=GROUP, announce=True)
    assert msg_id == str(command.command_id)
    assert 0 < (command.expires_at - datetime.now(UTC)).total_seconds() < api.settings.group_command_timeout
    assert len({c.command_id for c, _ in fake.commands}) == 3


async def test_a_rate_limited_write_is_429_with_the_dispatcher_s_retry_after(api: Api, nats_url: str) -> None:
    """The dispatcher found no room in the tenant's limit for a create: 429 with Retry-After."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    url = f"/api/v1/sessions/{session['id']}/groups"
    body = {"subject": "Order 1042", "participants": ["+5511988887777"]}
    with dispatcher(
        nats_url, tenant["id"], session["id"], CommandRateLimited(retry_after=12.2, window="minute")
    ):
        response = await api.client.post(url, json=body, headers=auth)
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) == 13


async def test_a_write_nobody_carries_out_before_it_expires_is_503(api: Api) -> None:
    """No dispatcher answers before the command expires: 503 with Retry-After, never a 500."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    response = await api.client.post(f"/api/v1/sessions/{session['id']}/groups/{GROUP}/leave", headers=auth)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "will not be carried out later" in response.json()["detail"]


async def test_a_pending_join_names_the_group_and_a_reply_without_the_group_is_503(
    api: Api, nats_url: str
) -> None:
    """A join waiting for approval answers pending with the group's JID (null when the host could not
    tell it) and no info; a create answered without its group is a 503, not a 500."""
    tenant, auth = await api.tenant()
    session = await api.session(auth)
    url = f"/api/v1/sessions/{session['id']}/groups"
    answers = [
        GroupReply(host_id="h1", group={"jid": GROUP, "subject": "Order 1042"}, pending=True),  # type: ignore[arg-type]
        GroupReply(host_id="h1", pending=True),
        GroupReply(host_id="h1"),
    ]
    with dispatcher(nats_url, tenant["id"], session["id"], *answers):
        known = await api.client.post(f"{url}/join", json={"invite": "AbCdEfGhIjK"}, headers=auth)
        unknown = await api.client.post(f"{url}/join", json={"invite": "AbCdEfGhIjK"}, headers=auth)
        created = await api.client.post(
            url, json={"subject": "Order 1042", "participants": ["+5511988887777"]}, headers=auth
        )
    assert known.status_code == 200, known.text
    assert known.json() == {"group": GROUP, "pending": True, "info": None}
    assert unknown.json() == {"group": None, "pending": True, "info": None}
    assert created.status_code == 503, created.text
