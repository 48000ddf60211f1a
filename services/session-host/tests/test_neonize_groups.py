"""The neonize groups module: what is built from, and handed to, whatsmeow's real group types."""

import base64
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from neonize.exc import GetGroupInfoError, InviteLinkError, UpdateGroupParticipantsError
from neonize.proto import Neonize_pb2 as nz
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.utils.enum import ParticipantChange

from zaphub_contracts.content import TextContent
from zaphub_contracts.events import (
    GroupJoinedData,
    GroupJoinRequestData,
    GroupLeftData,
    GroupParticipantsData,
    GroupUpdatedData,
)
from zaphub_contracts.groups import (
    GroupRequest,
    GroupSettings,
    JoinRequest,
    Participant,
    ParticipantAction,
    ParticipantResult,
    Role,
    SetPicture,
    UpdateGroup,
)
from zaphub_session_host import handlers
from zaphub_session_host.transport.base import (
    GroupChange,
    GroupNotFound,
    Identity,
    InboundMessage,
    NotGroupAdmin,
    Unsupported,
)
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.events import inbound_from_event, parse_jid
from zaphub_session_host.transport.neonize.groups import (
    change_from_joined,
    changes_from_info_event,
    group_from_info,
    map_group_error,
)
from zaphub_session_host.transport.neonize.messages import Quoted, build_message

GROUP = "120363025246125486@g.us"
OWNER = "5511900000001@s.whatsapp.net"
OWNER_LID = "111222333@lid"
PEER = "5511988887777@s.whatsapp.net"
ME = Identity(jid=OWNER, lid=OWNER_LID, push_name="Loja")


class GroupRecorder:
    """A `ConnectionEvents` keeping the group changes and messages; the other callbacks are not
    expected here."""

    def __init__(self) -> None:
        self.changes: list[GroupChange] = []
        self.messages: list[InboundMessage] = []

    def on_group(self, change: GroupChange) -> None:
        self.changes.append(change)

    def on_message(self, message: InboundMessage) -> None:
        self.messages.append(message)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def info() -> nz.GroupInfo:
    return nz.GroupInfo(
        JID=parse_jid(GROUP),
        OwnerJID=parse_jid("111222333@lid"),
        OwnerPN=parse_jid(OWNER),
        GroupName=nz.GroupName(Name="Order 1042"),
        GroupTopic=nz.GroupTopic(Topic="Delivery updates", TopicID="T1"),
        GroupLocked=nz.GroupLocked(isLocked=True),
        GroupAnnounce=nz.GroupAnnounce(IsAnnounce=False),
        GroupCreated=1_700_000_000,
        Participants=[
            nz.GroupParticipant(
                JID=parse_jid(OWNER), LID=parse_jid("111222333@lid"), IsAdmin=True, IsSuperAdmin=True
            ),
            nz.GroupParticipant(JID=parse_jid("444555666@lid"), PhoneNumber=parse_jid(PEER)),
        ],
    )


@pytest.fixture
def conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[NeonizeConnection, GroupRecorder]:
    rec = GroupRecorder()
    connection = NeonizeTransport(tmp_path, max_sessions=2).open(uuid4(), uuid4(), None, rec)
    monkeypatch.setattr(connection, "_online", True)  # as after Connected, without WhatsApp
    monkeypatch.setattr(connection, "_identity", ME)
    return connection, rec


class Calls:
    """Records the calls made to the neonize client's methods it stands in for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
        self.made: list[tuple[str, tuple[Any, ...]]] = []
        self._monkeypatch = monkeypatch
        self._client = client

    def answer(self, name: str, result: Any = None, error: Exception | None = None) -> None:
        async def call(*args: Any) -> Any:
            self.made.append((name, args))
            if error is not None:
                raise error
            return result

        self._monkeypatch.setattr(self._client, name, call)

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.made if n == name]


@pytest.fixture
def calls(conn: tuple[NeonizeConnection, GroupRecorder], monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch, conn[0].client)


def test_group_info_becomes_the_contract_group_with_roles_lids_and_settings() -> None:
    """Owner by phone number, LID-addressed participants by phone JID with their LID, locked kept."""
    group = group_from_info(info())
    assert group.jid == GROUP and group.subject == "Order 1042" and group.description == "Delivery updates"
    assert group.owner == OWNER
    assert group.created_at is not None and group.created_at.year == 2023
    assert group.participants == [
        Participant(jid=OWNER, lid="111222333@lid", role=Role.SUPERADMIN),
        Participant(jid=PEER, lid="444555666@lid", role=Role.MEMBER),
    ]
    assert group.settings == GroupSettings(announce=False, locked=True)


def test_group_info_event_becomes_an_update_and_participant_changes() -> None:
    """A rename with a promotion and a leave: one group.updated, then one group.participants each."""
    event = nz.GroupInfoEvent(
        JID=parse_jid(GROUP),
        Sender=parse_jid(OWNER),
        Name=nz.GroupName(Name="Order 1042 (shipped)"),
        Promote=[parse_jid(PEER)],
        Leave=[parse_jid("5511977776666@s.whatsapp.net")],
    )
    assert changes_from_info_event(event) == [
        GroupUpdatedData(group=GROUP, by=OWNER, subject="Order 1042 (shipped)"),
        GroupParticipantsData(
            group=GROUP,
            action=ParticipantAction.REMOVE,
            participants=["5511977776666@s.whatsapp.net"],
            by=OWNER,
        ),
        GroupParticipantsData(group=GROUP, action=ParticipantAction.PROMOTE, participants=[PEER], by=OWNER),
    ]


async def test_joined_group_and_group_info_events_reach_the_runner(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """neonize's JoinedGroup and GroupInfoEvent become on_group calls, in order; a settings change
    reports the settings it did not carry as the group has them, not invented."""
    connection, rec = conn
    calls.answer("get_group_info", info())  # locked, as info() has it
    joined = nz.JoinedGroup(GroupInfo=info(), SenderPN=parse_jid(OWNER))
    announce = nz.GroupInfoEvent(JID=parse_jid(GROUP), Announce=nz.GroupAnnounce(IsAnnounce=True))
    assert connection.handle(joined) is None  # handled at once, nothing to await
    pending = connection.handle(announce)
    assert pending is not None
    await pending
    assert calls.named("get_group_info") == [(parse_jid(GROUP),)]
    assert rec.changes[0] == change_from_joined(nz.JoinedGroup(GroupInfo=info(), SenderPN=parse_jid(OWNER)))
    assert isinstance(rec.changes[0], GroupJoinedData) and rec.changes[0].by == OWNER
    assert rec.changes[1] == GroupUpdatedData(group=GROUP, settings=GroupSettings(announce=True, locked=True))


async def test_a_settings_change_of_an_unreadable_group_reports_no_settings(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """When the group cannot be read, a lock change alone is not reported with a guessed announce."""
    connection, rec = conn
    calls.answer("get_group_info", error=GetGroupInfoError("websocket not connected"))
    event = nz.GroupInfoEvent(
        JID=parse_jid(GROUP), Locked=nz.GroupLocked(isLocked=True), Name=nz.GroupName(Name="New")
    )
    pending = connection.handle(event)
    assert pending is not None
    await pending
    assert rec.changes == [GroupUpdatedData(group=GROUP, subject="New")]


def test_the_accounts_own_removal_and_a_deleted_group_are_group_left() -> None:
    """Its own JID or LID in Leave is group.left (by the admin), the others still participants;
    a Delete is group.left too."""
    me = frozenset({OWNER, OWNER_LID})
    removed = nz.GroupInfoEvent(
        JID=parse_jid(GROUP), Sender=parse_jid(PEER), Leave=[parse_jid(OWNER_LID), parse_jid(PEER)]
    )
    assert changes_from_info_event(removed, me) == [
        GroupParticipantsData(group=GROUP, action=ParticipantAction.REMOVE, participants=[PEER], by=PEER),
        GroupLeftData(group=GROUP, by=PEER),
    ]
    left = nz.GroupInfoEvent(JID=parse_jid(GROUP), Sender=parse_jid(OWNER), Leave=[parse_jid(OWNER)])
    assert changes_from_info_event(left, me) == [GroupLeftData(group=GROUP, by=OWNER)]
    deleted = nz.GroupInfoEvent(
        JID=parse_jid(GROUP), Sender=parse_jid(PEER), Delete=nz.GroupDelete(Deleted=True)
    )
    assert changes_from_info_event(deleted, me) == [GroupLeftData(group=GROUP, by=PEER)]


async def test_leave_and_removal_reach_the_runner_as_group_left(
    conn: tuple[NeonizeConnection, GroupRecorder],
) -> None:
    """The connection compares Leave with the session's own identity."""
    connection, rec = conn
    connection.handle(nz.GroupInfoEvent(JID=parse_jid(GROUP), Leave=[parse_jid(OWNER)]))
    assert rec.changes == [GroupLeftData(group=GROUP)]


async def test_group_picture_changes_are_group_updated_and_contacts_pictures_nothing(
    conn: tuple[NeonizeConnection, GroupRecorder],
) -> None:
    """neonize's Picture for a @g.us chat is group.updated (set or removed, by its author)."""
    connection, rec = conn
    connection.handle(nz.Picture(JID=parse_jid(GROUP), Author=parse_jid(PEER), Timestamp=1_700_000_000))
    connection.handle(nz.Picture(JID=parse_jid(GROUP), Author=parse_jid(OWNER), Remove=True))
    connection.handle(nz.Picture(JID=parse_jid(PEER), Author=parse_jid(PEER)))
    assert rec.changes == [
        GroupUpdatedData(group=GROUP, by=PEER),
        GroupUpdatedData(group=GROUP, by=OWNER, picture_removed=True),
    ]


def test_a_join_request_among_the_unknown_changes_is_group_join_request() -> None:
    """whatsmeow leaves the request notification unparsed: its jid attribute names who asks."""
    asker = "5511977776666@s.whatsapp.net"
    node = nz.Node(
        Tag="created_membership_requests",
        Nodes=[nz.Node(Tag="requested_user", Attrs=[nz.NodeAttrs(name="jid", jid=parse_jid(asker))])],
    )
    event = nz.GroupInfoEvent(JID=parse_jid(GROUP), UnknownChanges=[node, nz.Node(Tag="something_else")])
    assert changes_from_info_event(event) == [GroupJoinRequestData(group=GROUP, jid=asker)]


async def test_participant_changes_hand_whatsmeow_jids_and_the_action_and_map_results(
    conn: tuple[NeonizeConnection, GroupRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers become user JIDs, the action neonize's ParticipantChange; per-participant errors say why."""
    connection, _ = conn
    calls: list[tuple[nz.JID, list[nz.JID], ParticipantChange]] = []

    async def update(
        group: nz.JID, jids: list[nz.JID], action: ParticipantChange
    ) -> list[nz.GroupParticipant]:
        calls.append((group, jids, action))
        return [nz.GroupParticipant(JID=jids[0]), nz.GroupParticipant(JID=jids[1], Error=403)]

    monkeypatch.setattr(connection.client, "update_group_participants", update)
    results = await connection.groups.participants(
        GROUP, ParticipantAction.ADD, ["+5511988887777", PEER.replace("88887777", "11112222")]
    )
    assert calls == [
        (
            parse_jid(GROUP),
            [parse_jid(PEER), parse_jid("5511911112222@s.whatsapp.net")],
            ParticipantChange.ADD,
        )
    ]
    assert results == [
        ParticipantResult(jid=PEER, ok=True),
        ParticipantResult(jid="5511911112222@s.whatsapp.net", ok=False, reason="privacy"),
    ]


async def test_whatsmeow_refusals_become_named_errors(
    conn: tuple[NeonizeConnection, GroupRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """not-authorized is NotGroupAdmin naming the permission; not being in the group or the group
    not existing (whatsmeow's ErrNotInGroup, an IQ 403, and ErrGroupNotFound) is GroupNotFound."""
    connection, _ = conn

    async def refuse(*args: object) -> None:
        raise UpdateGroupParticipantsError(
            "failed to update participants: server returned error 403: not-authorized"
        )

    monkeypatch.setattr(connection.client, "update_group_participants", refuse)
    with pytest.raises(NotGroupAdmin) as refused:
        await connection.groups.participants(GROUP, ParticipantAction.REMOVE, [OWNER])
    assert refused.value.permission == "remove_participants"
    for text in (
        "info query returned status 404: item-not-found",
        "you're not participating in that group",
        "you're not participating in that group: info query returned status 403: forbidden",
        "that group does not exist",
        "that group invite link has been revoked",
    ):
        assert isinstance(map_group_error(text, "read"), GroupNotFound), text
    denied = map_group_error(
        "you don't have the permission to get the group's invite link", "manage_invite_link"
    )
    assert isinstance(denied, NotGroupAdmin) and denied.permission == "manage_invite_link"
    with pytest.raises(Unsupported):
        await connection.groups.answer_requests(GROUP, "approve", [PEER])  # type: ignore[arg-type]


async def test_a_non_member_reading_a_group_gets_group_not_found(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """get_group_info failing with whatsmeow's ErrNotInGroup text is GroupNotFound (a 404), not 403."""
    connection, _ = conn
    calls.answer("get_group_info", error=GetGroupInfoError("you're not participating in that group"))
    with pytest.raises(GroupNotFound):
        await connection.groups.info(GROUP)


async def test_create_hands_subject_and_jids_and_refuses_those_whatsapp_refused(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """Participants answered with an Error or an AddRequest are refused with their reason and left out
    of the group; the description is set as the first topic."""
    connection, _ = conn
    refused, invited, absent = (
        "5511911112222@s.whatsapp.net",
        "5511933334444@s.whatsapp.net",
        "5511955556666@s.whatsapp.net",
    )
    created = info()
    created.Participants.extend(
        [
            nz.GroupParticipant(JID=parse_jid(refused), Error=409),
            nz.GroupParticipant(
                JID=parse_jid(invited),
                Error=0,
                AddRequest=nz.GroupParticipantAddRequest(Code="c", Expiration=1),
            ),
        ]
    )
    calls.answer("create_group", created)
    calls.answer("set_group_topic")
    group, results = await connection.groups.create(
        "Order 1042", ["+5511988887777", refused, invited, absent], "Delivery updates"
    )
    assert calls.named("create_group") == [
        ("Order 1042", [parse_jid(PEER), parse_jid(refused), parse_jid(invited), parse_jid(absent)])
    ]
    assert results == [
        ParticipantResult(jid=PEER, ok=True),
        ParticipantResult(jid=refused, ok=False, reason="already_a_participant"),
        ParticipantResult(jid=invited, ok=False, reason="privacy"),
        ParticipantResult(jid=absent, ok=False, reason="refused"),
    ]
    assert [p.jid for p in group.participants] == [OWNER, PEER]
    ((jid, previous, new_id, topic),) = calls.named("set_group_topic")
    assert (jid, previous, topic) == (parse_jid(GROUP), "", "Delivery updates") and new_id


async def test_update_calls_each_setter_and_passes_the_current_topic_id(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """A new description names the topic it replaces (whatsmeow's previous topic ID); join approval
    has no neonize call."""
    connection, _ = conn
    for name in ("set_group_name", "set_group_topic", "set_group_announce", "set_group_locked"):
        calls.answer(name)
    calls.answer("get_group_info", info())
    change = UpdateGroup(group=GROUP, subject="Renamed", description="New topic", announce=True, locked=False)
    group = await connection.groups.update(change)
    g = parse_jid(GROUP)
    assert calls.named("set_group_name") == [(g, "Renamed")]
    ((jid, previous, new_id, topic),) = calls.named("set_group_topic")
    assert (jid, previous, topic) == (g, "T1", "New topic") and new_id != "T1"
    assert calls.named("set_group_announce") == [(g, True)]
    assert calls.named("set_group_locked") == [(g, False)]
    assert group.jid == GROUP
    with pytest.raises(Unsupported):
        await connection.groups.update(UpdateGroup(group=GROUP, join_approval=True))


async def test_invite_links_are_full_links_and_revoke_is_passed(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """whatsmeow's bare code gets the chat.whatsapp.com prefix; a full link is kept as it is."""
    connection, _ = conn
    calls.answer("get_group_invite_link", "AbCdEf123")
    assert await connection.groups.invite_link(GROUP, True) == "https://chat.whatsapp.com/AbCdEf123"
    calls.answer("get_group_invite_link", "https://chat.whatsapp.com/XyZ")
    assert await connection.groups.invite_link(GROUP, False) == "https://chat.whatsapp.com/XyZ"
    assert calls.named("get_group_invite_link") == [(parse_jid(GROUP), True), (parse_jid(GROUP), False)]


async def test_join_by_link_returns_the_group(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """The link's code (prefix dropped) goes to join_group_with_link; the joined group is read."""
    connection, _ = conn
    calls.answer("join_group_with_link", parse_jid(GROUP))
    calls.answer("get_group_info", info())
    group, pending = await connection.groups.join("https://chat.whatsapp.com/AbCdEf123")
    assert calls.named("join_group_with_link") == [("AbCdEf123",)]
    assert (group.jid, group.subject, pending) == (GROUP, "Order 1042", False)


async def test_join_waiting_for_approval_is_pending_with_the_links_preview(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """whatsmeow answers a join that needs approval with the JID and no error; the account is no
    member yet, so the group comes from the link and the join is pending."""
    connection, _ = conn
    calls.answer("join_group_with_link", parse_jid(GROUP))
    calls.answer("get_group_info", error=GetGroupInfoError("you're not participating in that group"))
    calls.answer("get_group_info_from_link", info())
    group, pending = await connection.groups.join("AbCdEf123")
    assert (group.jid, pending) == (GROUP, True)
    assert calls.named("get_group_info_from_link") == [("AbCdEf123",)]
    calls.answer("join_group_with_link", error=InviteLinkError("that group invite link has been revoked"))
    with pytest.raises(GroupNotFound):
        await connection.groups.join("AbCdEf123")


async def test_leave_picture_and_join_requests_call_neonize(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """leave_group and set_group_photo get the group's JID (the photo's id comes back); join requests
    are read with their time; removing a picture has no neonize call."""
    connection, _ = conn
    calls.answer("leave_group")
    calls.answer("set_group_photo", "1700000000")
    requests = [nz.GroupParticipantRequest(Participant=parse_jid(PEER), TimeAt=1_700_000_000)]
    calls.answer("get_group_request_participants", requests)
    await connection.groups.leave(GROUP)
    assert await connection.groups.set_picture(GROUP, b"\xff\xd8jpeg") == "1700000000"
    assert await connection.groups.join_requests(GROUP) == [
        JoinRequest(jid=PEER, requested_at=datetime.fromtimestamp(1_700_000_000, UTC))
    ]
    assert calls.named("leave_group") == [(parse_jid(GROUP),)]
    assert calls.named("set_group_photo") == [(parse_jid(GROUP), b"\xff\xd8jpeg")]
    with pytest.raises(Unsupported):
        await connection.groups.set_picture(GROUP, None)


async def test_mention_all_mentions_every_participant_but_the_sender(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """A group text with mention_all gets the participants from get_group_info in mentionedJID,
    after the mentions given, without the account itself."""
    connection, _ = conn
    calls.answer("get_group_info", info())
    calls.answer("send_message", nz.SendResponse(ID="3EB0A1"))
    other = "5511922223333@s.whatsapp.net"
    content = TextContent(text="hello all", mention_all=True, mentions=[other])
    assert await connection.messages.send(GROUP, content, "3EB0A1", uuid4()) == "3EB0A1"
    ((to, message),) = calls.named("send_message")
    assert to == parse_jid(GROUP)
    assert list(message.extendedTextMessage.contextInfo.mentionedJID) == [other, "444555666@lid"]


def test_a_group_reply_names_the_quoted_participant_never_the_group() -> None:
    """Without the quoted message cached, the participant the client names is used; without one,
    none (not the group JID); in a 1:1 chat the peer."""
    with_sender = build_message(TextContent(text="ok", reply_to="3EB0Q", reply_to_participant=PEER), GROUP)
    assert with_sender.extendedTextMessage.contextInfo.participant == PEER
    unknown = build_message(TextContent(text="ok", reply_to="3EB0Q"), GROUP)
    assert not unknown.extendedTextMessage.contextInfo.HasField("participant")
    assert unknown.extendedTextMessage.contextInfo.stanzaID == "3EB0Q"
    direct = build_message(TextContent(text="ok", reply_to="3EB0Q"), PEER)
    assert direct.extendedTextMessage.contextInfo.participant == PEER
    cached = Quoted(sender=OWNER, message=wa.Message(conversation="hi"))
    seen = build_message(
        TextContent(text="ok", reply_to="3EB0Q", reply_to_participant=PEER), GROUP, None, cached
    )
    assert seen.extendedTextMessage.contextInfo.participant == OWNER


def group_message(ctx: wa.ContextInfo, sender: str = "444555666@lid", alt: str | None = PEER) -> nz.Message:
    source = nz.MessageSource(Chat=parse_jid(GROUP), Sender=parse_jid(sender), IsGroup=True)
    if alt is not None:
        source.SenderAlt.CopyFrom(parse_jid(alt))
    msg_info = nz.MessageInfo(MessageSource=source, ID="3EB0IN", Timestamp=1_700_000_000)
    return nz.Message(
        Info=msg_info,
        Message=wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text="yes", contextInfo=ctx)),
    )


def test_an_inbound_group_reply_carries_the_quoted_participant() -> None:
    """ContextInfo.participant (device dropped) becomes reply_to_participant."""
    ctx = wa.ContextInfo(stanzaID="3EB0Q", participant="5511900000001:3@s.whatsapp.net")
    inbound = inbound_from_event(group_message(ctx))
    assert inbound is not None and isinstance(inbound.content, TextContent)
    assert (inbound.content.reply_to, inbound.content.reply_to_participant) == ("3EB0Q", OWNER)


async def test_a_lid_only_sender_is_resolved_to_its_phone_jid_when_the_store_knows_it(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """A group message from a LID without its number: get_pn_from_lid gives the phone JID; a LID
    the store does not know stays the sender."""
    connection, rec = conn
    calls.answer("get_pn_from_lid", parse_jid(PEER))
    pending = connection.handle(group_message(wa.ContextInfo(), alt=None))
    assert pending is not None
    await pending
    assert calls.named("get_pn_from_lid") == [(parse_jid("444555666@lid"),)]
    assert (rec.messages[0].sender, rec.messages[0].sender_lid, rec.messages[0].chat) == (
        PEER,
        "444555666@lid",
        GROUP,
    )
    calls.answer("get_pn_from_lid", nz.JID(IsEmpty=True))
    pending = connection.handle(group_message(wa.ContextInfo(), alt=None))
    assert pending is not None
    await pending
    assert rec.messages[1].sender == "444555666@lid"


async def test_participants_named_by_lid_get_their_phone_jid_when_the_store_knows_it(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """A LID-addressed group's promotion names a LID: group.participants carries the phone JID."""
    connection, rec = conn
    calls.answer("get_pn_from_lid", parse_jid(PEER))
    pending = connection.handle(
        nz.GroupInfoEvent(JID=parse_jid(GROUP), Sender=parse_jid(OWNER), Promote=[parse_jid("444555666@lid")])
    )
    assert pending is not None
    await pending
    assert rec.changes == [
        GroupParticipantsData(group=GROUP, action=ParticipantAction.PROMOTE, participants=[PEER], by=OWNER)
    ]


async def test_setting_a_picture_replies_with_the_picture_id_neonize_gave(
    conn: tuple[NeonizeConnection, GroupRecorder], calls: Calls
) -> None:
    """The group op's reply carries set_group_photo's id, which neonize's group info lacks."""
    connection, _ = conn
    calls.answer("set_group_photo", "1700000001")
    calls.answer("get_group_info", info())
    runner = SimpleNamespace(
        tenant_id=connection.tenant_id,
        session_id=connection.session_id,
        ctx=SimpleNamespace(host_id="h1"),
        groups=lambda: connection.groups,
    )
    request = GroupRequest(
        tenant_id=connection.tenant_id,
        session_id=connection.session_id,
        action=SetPicture(group=GROUP, image=base64.b64encode(b"\xff\xd8jpeg").decode()),
    )
    reply = await handlers._group(runner, request.model_dump_json().encode())  # type: ignore[arg-type]
    assert reply.group is not None and (reply.group.jid, reply.group.picture_id) == (GROUP, "1700000001")
