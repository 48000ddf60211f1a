"""The neonize groups module: what is built from, and handed to, whatsmeow's real group types."""

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from neonize.exc import UpdateGroupParticipantsError
from neonize.proto import Neonize_pb2 as nz
from neonize.utils.enum import ParticipantChange

from zaphub_contracts.events import GroupJoinedData, GroupParticipantsData, GroupUpdatedData
from zaphub_contracts.groups import GroupSettings, Participant, ParticipantAction, ParticipantResult, Role
from zaphub_session_host.transport.base import GroupChange, GroupNotFound, NotGroupAdmin, Unsupported
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.events import parse_jid
from zaphub_session_host.transport.neonize.groups import (
    change_from_joined,
    changes_from_info_event,
    group_from_info,
    map_group_error,
)

GROUP = "120363025246125486@g.us"
OWNER = "5511900000001@s.whatsapp.net"
PEER = "5511988887777@s.whatsapp.net"


class GroupRecorder:
    """A `ConnectionEvents` keeping the group changes; the other callbacks are not expected here."""

    def __init__(self) -> None:
        self.changes: list[GroupChange] = []

    def on_group(self, change: GroupChange) -> None:
        self.changes.append(change)

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
    return connection, rec


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


def test_joined_group_and_group_info_events_reach_the_runner(
    conn: tuple[NeonizeConnection, GroupRecorder],
) -> None:
    """neonize's JoinedGroup and GroupInfoEvent become on_group calls, in order."""
    connection, rec = conn
    joined = nz.JoinedGroup(GroupInfo=info(), SenderPN=parse_jid(OWNER))
    announce = nz.GroupInfoEvent(JID=parse_jid(GROUP), Announce=nz.GroupAnnounce(IsAnnounce=True))
    assert connection.handle(joined) is None  # handled at once, nothing to await
    assert connection.handle(announce) is None
    assert rec.changes[0] == change_from_joined(nz.JoinedGroup(GroupInfo=info(), SenderPN=parse_jid(OWNER)))
    assert isinstance(rec.changes[0], GroupJoinedData) and rec.changes[0].by == OWNER
    assert rec.changes[1] == GroupUpdatedData(
        group=GROUP, settings=GroupSettings(announce=True, locked=False)
    )


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
    """not-authorized is NotGroupAdmin naming the permission; item-not-found is GroupNotFound."""
    connection, _ = conn

    async def refuse(*args: object) -> None:
        raise UpdateGroupParticipantsError(
            "failed to update participants: server returned error 403: not-authorized"
        )

    monkeypatch.setattr(connection.client, "update_group_participants", refuse)
    with pytest.raises(NotGroupAdmin) as refused:
        await connection.groups.participants(GROUP, ParticipantAction.REMOVE, [OWNER])
    assert refused.value.permission == "remove_participants"
    assert isinstance(
        map_group_error("info query returned status 404: item-not-found", "read"), GroupNotFound
    )
    with pytest.raises(Unsupported):
        await connection.groups.answer_requests(GROUP, "approve", [PEER])  # type: ignore[arg-type]
