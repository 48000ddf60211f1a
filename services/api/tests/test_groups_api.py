"""Group routes at the API edge: how a host's answers, or its absence, become HTTP answers."""

import asyncio
import json
import threading
from typing import Any

import nats

from zaphub_contracts.groups import GroupReply, GroupRequest, UpdateGroup
from zaphub_contracts.host import HostError

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


async def test_host_answers_become_the_group_403_and_404(api: Api, nats_url: str) -> None:
    """A host's not_group_admin is a 403 naming the permission, group_not_found a 404, and a group
    reply the group; the request the host gets is the typed contract action."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    seen: list[GroupRequest] = []
    answers = [
        HostError(reason="not_group_admin", detail="change_settings: only admins may change settings"),
        HostError(reason="group_not_found", detail="not in it"),
        GroupReply(host_id="h1", group={"jid": GROUP, "subject": "Renamed"}),  # type: ignore[arg-type]
    ]
    ready, done = threading.Event(), threading.Event()

    async def host() -> None:
        nc = await nats.connect(nats_url)

        async def reply(msg: Any) -> None:
            seen.append(GroupRequest.model_validate_json(msg.data))
            await msg.respond(answers[len(seen) - 1].model_dump_json().encode())

        await nc.subscribe(f"zaphub.v1.host.{session['id']}.group", cb=reply)
        await nc.flush()
        ready.set()
        await asyncio.to_thread(done.wait, 60)
        await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(host(),))
    thread.start()
    url = f"/api/v1/sessions/{session['id']}/groups/{GROUP}"
    try:
        assert await asyncio.to_thread(ready.wait, 30)
        forbidden = await api.client.patch(url, json={"announce": True}, headers=auth)
        missing = await api.client.patch(url, json={"subject": "x"}, headers=auth)
        renamed = await api.client.patch(url, json={"subject": "Renamed"}, headers=auth)
    finally:
        done.set()
        await asyncio.to_thread(thread.join, 30)
    assert forbidden.status_code == 403, forbidden.text
    body = json.loads(forbidden.text)
    assert body["type"] == "https://zaphub.dev/problems/group-admin-required/change_settings"
    assert body["permission"] == "change_settings"
    assert missing.status_code == 404, missing.text
    assert renamed.status_code == 200 and renamed.json()["subject"] == "Renamed"
    assert seen[0].action == UpdateGroup(group=GROUP, announce=True)
