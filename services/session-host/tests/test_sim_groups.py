"""The simulator's groups in one process (no NATS): WhatsApp's admin rules and who hears of a change."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from zaphub_contracts.content import TextContent
from zaphub_contracts.events import GroupParticipantsData
from zaphub_contracts.groups import ParticipantAction, ParticipantResult, UpdateGroup
from zaphub_session_host.transport.base import GroupChange, GroupNotFound, InboundMessage, NotGroupAdmin
from zaphub_session_host.transport.sim import SimTransport
from zaphub_session_host.transport.sim.connection import SimConnection


class Heard:
    """A `ConnectionEvents` keeping group changes and messages; the rest is not looked at here."""

    def __init__(self) -> None:
        self.changes: list[GroupChange] = []
        self.messages: list[InboundMessage] = []

    def on_group(self, change: GroupChange) -> None:
        self.changes.append(change)

    def on_message(self, message: InboundMessage) -> None:
        self.messages.append(message)

    def on_qr(self, qr: str, expires_at: datetime) -> None: ...

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


@pytest.fixture
async def three(tmp_path: Path) -> list[tuple[SimConnection, Heard]]:
    net = SimTransport(tmp_path, pair_delay=0.01)
    await net.start()
    out = []
    for _ in range(3):
        heard = Heard()
        conn = net.open(uuid4(), uuid4(), None, heard)
        await conn.connect()
        out.append((conn, heard))
    for _ in range(100):
        if all(c.online for c, _ in out):
            break
        await asyncio.sleep(0.01)
    return out


def jid(conn: SimConnection) -> str:
    assert conn.identity is not None
    return conn.identity.jid


async def test_admin_rules_are_enforced_as_whatsapp_does(three: list[tuple[SimConnection, Heard]]) -> None:
    """Members may not manage; an admin may not remove the creator; announce lets only admins send."""
    (a, _), (b, heard_b), (c, _) = three
    group, refused = await a.groups.create("G", [jid(b), jid(c), "+9981234567"], None)
    assert refused[-1] == ParticipantResult(jid="9981234567@s.whatsapp.net", ok=False, reason="privacy")
    with pytest.raises(NotGroupAdmin) as denied:
        await b.groups.participants(group.jid, ParticipantAction.REMOVE, [jid(c)])
    assert denied.value.permission == "remove_participants"
    await a.groups.participants(group.jid, ParticipantAction.PROMOTE, [jid(b)])
    results = await b.groups.participants(group.jid, ParticipantAction.REMOVE, [jid(a), jid(c)])
    assert [r.reason for r in results] == ["not_allowed_for_the_creator", None]
    with pytest.raises(GroupNotFound):
        await c.groups.info(group.jid)
    await a.groups.update(UpdateGroup(group=group.jid, announce=True))
    await a.groups.participants(group.jid, ParticipantAction.DEMOTE, [jid(b)])
    with pytest.raises(NotGroupAdmin):
        await b.messages.send(group.jid, TextContent(text="hi"), "3EB0X1", uuid4())
    assert (
        GroupParticipantsData(
            group=group.jid, action=ParticipantAction.DEMOTE, participants=[jid(b)], by=jid(a)
        )
        in heard_b.changes
    )


async def test_a_group_message_reaches_every_member_but_the_sender(
    three: list[tuple[SimConnection, Heard]],
) -> None:
    """B and C get A's message with the group as chat and A as sender; A does not."""
    (a, heard_a), (b, heard_b), (c, heard_c) = three
    group, _ = await a.groups.create("G", [jid(b), jid(c)], None)
    await a.messages.send(group.jid, TextContent(text="hi", mention_all=True), "3EB0X2", uuid4())
    assert heard_a.messages == []
    for heard in (heard_b, heard_c):
        (message,) = heard.messages
        assert (message.chat, message.sender, message.is_group) == (group.jid, jid(a), True)
        assert isinstance(message.content, TextContent)
        assert set(message.content.mentions) == {jid(b), jid(c)}


async def test_a_reply_in_a_group_carries_the_quoted_participant(
    three: list[tuple[SimConnection, Heard]],
) -> None:
    """B's reply to A's message names A as the quoted participant, and C receives it so."""
    (a, _), (b, _), (c, heard_c) = three
    group, _ = await a.groups.create("G", [jid(b), jid(c)], None)
    reply = TextContent(text="yes", reply_to="3EB0X3", reply_to_participant=jid(a))
    await b.messages.send(group.jid, reply, "3EB0X4", uuid4())
    (message,) = heard_c.messages
    assert isinstance(message.content, TextContent)
    assert (message.content.reply_to, message.content.reply_to_participant) == ("3EB0X3", jid(a))


async def test_joining_a_group_that_needs_approval_is_pending_with_the_group(
    three: list[tuple[SimConnection, Heard]],
) -> None:
    """With join approval on, join answers the group (its JID and subject) as pending, and the
    account is not yet a member."""
    (a, _), (b, _), (c, _) = three
    group, _ = await a.groups.create("Approval", [jid(b)], None)
    await a.groups.update(UpdateGroup(group=group.jid, join_approval=True))
    link = await a.groups.invite_link(group.jid, False)
    joined, pending = await c.groups.join(link)
    assert (joined.jid, joined.subject, pending) == (group.jid, "Approval", True)
    with pytest.raises(GroupNotFound):
        await c.groups.info(group.jid)
    await a.groups.update(UpdateGroup(group=group.jid, join_approval=False))
    joined, pending = await c.groups.join(link)
    assert (joined.jid, pending) == (group.jid, False)
    assert jid(c) in {p.jid for p in joined.participants}
