"""Groups end to end on the simulator, through the API, two session-hosts and the simulated network
between them, as real processes: one stack for the module, four sessions of one tenant in it."""

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from e2e.client import Tenant, eventually, new_tenant
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from zaphub_contracts import subjects
from zaphub_devstack.testing import Stack

Event = dict[str, Any]
GROUP_COMMAND_TIMEOUT = 45.0


@dataclass
class Events:
    """Every event of the tenant since the module started, as a client on NATS would see them."""

    seen: list[Event] = field(default_factory=list)

    async def on_msg(self, msg: Msg) -> None:
        self.seen.append(json.loads(msg.data))

    async def wait(self, session: dict[str, Any], short: str, match: Callable[[Event], bool]) -> Event:
        type_ = f"io.zaphub.{short}.v1"

        async def found() -> Event | None:
            for event in self.seen:
                if event["sessionid"] == session["id"] and event["type"] == type_ and match(event["data"]):
                    return event
            return None

        return await eventually(found, 15, f"{short} at session {session['name']}")


@dataclass
class World:
    stack: Stack
    http: httpx.AsyncClient
    tenant: Tenant
    sessions: dict[str, dict[str, Any]]
    events: Events

    def url(self, who: str, path: str = "") -> str:
        return f"/api/v1/sessions/{self.sessions[who]['id']}/groups{path}"

    async def call(
        self, method: str, who: str, path: str = "", body: Any = None, timeout: float = 15
    ) -> httpx.Response:
        return await self.http.request(
            method, self.url(who, path), json=body, headers=self.tenant.headers, timeout=timeout
        )


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("stack")
    env = {
        "ZAPHUB_TRANSPORT": "sim",
        "ZAPHUB_SIM_PAIR_DELAY": "0.3",
        "ZAPHUB_SESSION_HOSTS": "2",
        # Long enough for a group write to outlive a dispatcher's restart (the last test).
        "ZAPHUB_GROUP_COMMAND_TIMEOUT": str(GROUP_COMMAND_TIMEOUT),
    }
    async with (
        Stack(data_dir, env=env) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=15) as http,
    ):
        tenant = await new_tenant(http, stack.admin_key)
        nc = await nats.connect(stack.nats_url)
        events = Events()
        await nc.subscribe(subjects.tenant_events(uuid.UUID(tenant.id)), cb=events.on_msg)
        try:
            sessions = {name: await tenant.connected_session(name) for name in ("A", "B", "C", "D")}
            yield World(stack, http, tenant, sessions, events)
        finally:
            await nc.close()


@dataclass
class Shared:
    group: str = ""


SHARED = Shared()


async def test_a_creates_a_group_with_b_and_c_and_refused_numbers_say_why(world: World) -> None:
    """The creator is superadmin, B and C are members, a number not on WhatsApp is listed as refused."""
    s = world.sessions
    assert len({session["host"] for session in s.values()}) == 2, "the sessions span both hosts"
    created = await world.call(
        "POST",
        "A",
        body={
            "subject": "Order 1042",
            "participants": [s["B"]["jid"], "+" + s["C"]["jid"].split("@")[0], "+9991234567"],
            "description": "Delivery updates",
        },
    )
    assert created.status_code == 201, created.text
    group = created.json()
    SHARED.group = group["jid"]
    assert group["jid"].endswith("@g.us")
    assert group["owner"] == s["A"]["jid"]
    roles = {p["jid"]: p["role"] for p in group["participants"]}
    assert roles == {s["A"]["jid"]: "superadmin", s["B"]["jid"]: "member", s["C"]["jid"]: "member"}
    assert all(p["lid"] for p in group["participants"])
    assert group["settings"] == {"announce": False, "locked": False, "join_approval": False}
    assert group["refused"] == [
        {"jid": "9991234567@s.whatsapp.net", "ok": False, "reason": "not_on_whatsapp"}
    ]
    await world.events.wait(s["B"], "group.joined", lambda d: d["group"]["jid"] == SHARED.group)


async def test_b_lists_the_group_and_receives_a_group_message_from_a(world: World) -> None:
    """B sees the group, and A's message arrives at B with the group as chat and A as participant."""
    s = world.sessions
    listed = await world.call("GET", "B")
    assert listed.status_code == 200, listed.text
    assert [g["jid"] for g in listed.json()] == [SHARED.group]
    sent = await world.http.post(
        f"/api/v1/sessions/{s['A']['id']}/messages",
        json={"to": SHARED.group, "type": "text", "text": "hello group", "mention_all": True},
        headers=world.tenant.headers,
    )
    assert sent.status_code == 202, sent.text
    received = await world.events.wait(s["B"], "message.received", lambda d: d["chat"] == SHARED.group)
    data = received["data"]
    assert data["participant"] == s["A"]["jid"]
    assert data["participant_lid"] == s["A"]["lid"]
    assert data["is_group"] is True
    assert set(data["content"]["mentions"]) == {s["B"]["jid"], s["C"]["jid"]}
    await world.events.wait(s["C"], "message.received", lambda d: d["chat"] == SHARED.group)


async def test_a_member_cannot_change_settings_or_read_the_invite_link(world: World) -> None:
    """Settings and invite links are for admins: 403 with a problem type naming the permission."""
    settings = await world.call("PATCH", "B", f"/{SHARED.group}", {"announce": True})
    assert settings.status_code == 403, settings.text
    assert settings.json()["type"].endswith("/group-admin-required/change_settings")
    link = await world.call("GET", "C", f"/{SHARED.group}/invite-link")
    assert link.status_code == 403
    assert link.json()["permission"] == "manage_invite_link"


async def test_promoted_b_renames_the_group_and_everyone_sees_it(world: World) -> None:
    """A promotes B; B's rename reaches A and C as group.updated naming B."""
    s = world.sessions
    promoted = await world.call(
        "POST", "A", f"/{SHARED.group}/participants", {"action": "promote", "participants": [s["B"]["jid"]]}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["results"] == [{"jid": s["B"]["jid"], "ok": True, "reason": None}]
    await world.events.wait(s["C"], "group.participants", lambda d: d["action"] == "promote")
    renamed = await world.call("PATCH", "B", f"/{SHARED.group}", {"subject": "Order 1042 (shipped)"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["subject"] == "Order 1042 (shipped)"
    for who in ("A", "C"):
        updated = await world.events.wait(
            s[who], "group.updated", lambda d: d["subject"] == "Order 1042 (shipped)"
        )
        assert updated["data"]["by"] == s["B"]["jid"]


async def test_c_leaves_and_everyone_sees_it(world: World) -> None:
    """C leaves: C gets group.left, A and B group.participants (removed, by C)."""
    s = world.sessions
    left = await world.call("POST", "C", f"/{SHARED.group}/leave")
    assert left.status_code == 204, left.text
    await world.events.wait(s["C"], "group.left", lambda d: d["group"] == SHARED.group)
    for who in ("A", "B"):
        change = await world.events.wait(
            s[who], "group.participants", lambda d: d["action"] == "remove" and d["by"] == s["C"]["jid"]
        )
        assert change["data"]["participants"] == [s["C"]["jid"]]
    gone = await world.call("GET", "C", f"/{SHARED.group}")
    assert gone.status_code == 404


async def test_a_fourth_session_joins_through_the_invite_link(world: World) -> None:
    """D joins by the link A reads; a revoked link no longer works."""
    s = world.sessions
    link = await world.call("GET", "A", f"/{SHARED.group}/invite-link")
    assert link.status_code == 200, link.text
    invite = link.json()["invite_link"]
    assert invite.startswith("https://chat.whatsapp.com/")
    joined = await world.call("POST", "D", "/join", {"invite": invite})
    assert joined.status_code == 200, joined.text
    assert joined.json()["group"] == SHARED.group
    assert joined.json()["pending"] is False
    await world.events.wait(s["D"], "group.joined", lambda d: d["group"]["jid"] == SHARED.group)
    await world.events.wait(
        s["A"], "group.participants", lambda d: d["action"] == "add" and s["D"]["jid"] in d["participants"]
    )
    revoked = await world.call("POST", "A", f"/{SHARED.group}/invite-link/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["invite_link"] != invite
    stale = await world.call("POST", "C", "/join", {"invite": invite})
    assert stale.status_code == 404


async def test_demoted_b_gets_403_removing_a(world: World) -> None:
    """Once demoted, B may not remove anyone: 403 naming the permission; A stays in the group."""
    s = world.sessions
    demoted = await world.call(
        "POST", "A", f"/{SHARED.group}/participants", {"action": "demote", "participants": [s["B"]["jid"]]}
    )
    assert demoted.status_code == 200, demoted.text
    refused = await world.call(
        "POST", "B", f"/{SHARED.group}/participants", {"action": "remove", "participants": [s["A"]["jid"]]}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "https://zaphub.dev/problems/group-admin-required/remove_participants"
    info = (await world.call("GET", "A", f"/{SHARED.group}")).json()
    assert {p["jid"]: p["role"] for p in info["participants"]}[s["A"]["jid"]] == "superadmin"


async def test_join_approval_makes_a_request_the_admin_answers(world: World) -> None:
    """With join approval on, C's join is pending, A sees the request and approves it."""
    s = world.sessions
    on = await world.call("PATCH", "A", f"/{SHARED.group}", {"join_approval": True})
    assert on.status_code == 200, on.text
    assert on.json()["settings"]["join_approval"] is True
    invite = (await world.call("GET", "A", f"/{SHARED.group}/invite-link")).json()["invite_link"]
    pending = await world.call("POST", "C", "/join", {"invite": invite})
    assert pending.status_code == 200, pending.text
    assert pending.json()["pending"] is True
    await world.events.wait(s["A"], "group.join_request", lambda d: d["jid"] == s["C"]["jid"])
    requests = (await world.call("GET", "A", f"/{SHARED.group}/requests")).json()["requests"]
    assert [r["jid"] for r in requests] == [s["C"]["jid"]]
    approved = await world.call(
        "POST", "A", f"/{SHARED.group}/requests", {"action": "approve", "participants": [s["C"]["jid"]]}
    )
    assert approved.json()["results"] == [{"jid": s["C"]["jid"], "ok": True, "reason": None}]
    await world.events.wait(s["C"], "group.joined", lambda d: d["group"]["jid"] == SHARED.group)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "", {"subject": "", "participants": ["+5511988887777"]}, "subject"),
        ("POST", "", {"subject": "x", "participants": []}, "participants"),
        ("POST", "", {"subject": "x", "participants": ["not a number"]}, "participants.0"),
        ("POST", "", {"subject": "x", "participants": ["+5511988887777"], "owner": "me"}, "owner"),
        ("GET", "/not-a-group", None, "group"),
        ("PATCH", "/120363000000000001@g.us", {}, "body"),
        (
            "POST",
            "/120363000000000001@g.us/participants",
            {"action": "kick", "participants": ["+5511988887777"]},
            "action",
        ),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    world: World, method: str, path: str, body: Any, field: str
) -> None:
    """Invalid requests are refused before any host is asked, naming the field."""
    response = await world.call(method, "A", path, body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()


async def test_unknown_group_and_other_tenants_sessions_are_404(world: World) -> None:
    """A group the account is not in, and a session of no such id, are both 404."""
    unknown = await world.call("GET", "A", "/120363000000000001@g.us")
    assert unknown.status_code == 404, unknown.text
    response = await world.http.get(f"/api/v1/sessions/{uuid.uuid4()}/groups", headers=world.tenant.headers)
    assert response.status_code == 404


async def test_creating_and_adding_count_against_the_rate_limit_and_reads_do_not(world: World) -> None:
    """With 2 messages a minute, a create and an add use them up: the next create is 429 with
    Retry-After, reads still answer; once logged out, the session's groups are 409."""
    response = await world.http.post(
        "/api/v1/tenants",
        json={"name": "tight", "rate_limits": {"per_minute": 2}},
        headers={"Authorization": f"Bearer {world.stack.admin_key}"},
    )
    assert response.status_code == 201, response.text
    tight = Tenant(world.http, response.json())
    session = await tight.connected_session("E")
    url = f"/api/v1/sessions/{session['id']}/groups"
    created = await world.http.post(
        url, json={"subject": "Tight", "participants": ["+5511955554444"]}, headers=tight.headers
    )
    assert created.status_code == 201, created.text
    group = created.json()["jid"]
    added = await world.http.post(
        f"{url}/{group}/participants",
        json={"action": "add", "participants": ["+5511955553333"]},
        headers=tight.headers,
    )
    assert added.status_code == 200, added.text
    refused = await world.http.post(
        url, json={"subject": "One more", "participants": []}, headers=tight.headers
    )
    assert refused.status_code in (422, 429), refused.text  # an empty list is refused before the limit
    refused = await world.http.post(
        url, json={"subject": "One more", "participants": ["+5511955554444"]}, headers=tight.headers
    )
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    for _ in range(3):
        assert (await world.http.get(f"{url}/{group}", headers=tight.headers)).status_code == 200
    logout = await world.http.post(f"/api/v1/sessions/{session['id']}/logout", headers=tight.headers)
    assert logout.status_code == 202

    async def not_connected() -> httpx.Response | None:
        response = await world.http.get(url, headers=tight.headers)
        return response if response.status_code == 409 else None

    conflict = await eventually(not_connected, 15, "groups of a logged-out session to be 409")
    assert "not connected" in conflict.json()["detail"]


async def test_a_create_accepted_while_the_dispatcher_is_down_runs_once_it_is_back(world: World) -> None:
    """A group write stored in ZAPHUB_CMD while the dispatcher is frozen and then killed is carried out
    by the restarted dispatcher, and the waiting client gets its 201."""
    s = world.sessions
    nc = await nats.connect(world.stack.nats_url)
    js = nc.jetstream()
    subject = subjects.group_command(uuid.UUID(world.tenant.id), uuid.UUID(s["A"]["id"]))
    body = {"subject": "After the restart", "participants": [s["B"]["jid"]]}
    old = world.stack.pids()["dispatcher-1"]
    os.kill(old, signal.SIGSTOP)
    try:
        created = asyncio.create_task(world.call("POST", "A", body=body, timeout=GROUP_COMMAND_TIMEOUT + 10))

        async def stored() -> bool:
            try:
                await js.get_last_msg("ZAPHUB_CMD", subject)
            except NotFoundError:
                return False
            return True

        await eventually(stored, 15, "the group command stored in ZAPHUB_CMD")
    finally:
        os.kill(old, signal.SIGKILL)  # still stopped: it never got to carry the command out
        await nc.close()
    await world.stack.wait_restarted("dispatcher-1", old, within=30)
    response = await created
    assert response.status_code == 201, response.text
    jid = response.json()["jid"]
    await world.events.wait(s["B"], "group.joined", lambda d: d["group"]["jid"] == jid)
