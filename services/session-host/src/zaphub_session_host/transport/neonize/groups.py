"""Groups through neonize: whatsmeow's group calls (`create_group`, `get_group_info`,
`get_joined_groups`, `update_group_participants`, the `set_group_*` setters, invite links,
`leave_group`, `get_group_request_participants`), and its group events (`JoinedGroup`,
`GroupInfoEvent`) as `group.*` changes.

`group_from_info`, `changes_from_info_event` and `change_from_joined` are pure, so what is built
from whatsmeow's types can be checked without a connection. neonize 0.5.2 offers no call to answer
join requests, to turn join approval on or off, or to remove a picture: those are `Unsupported`.
"""

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import GroupInfo, GroupInfoEvent, GroupParticipant, JoinedGroup
from neonize.utils.enum import ParticipantChange

from zaphub_contracts.events import GroupJoinedData, GroupParticipantsData, GroupUpdatedData
from zaphub_contracts.groups import (
    Group,
    GroupSettings,
    JoinRequest,
    Participant,
    ParticipantAction,
    ParticipantResult,
    RequestAction,
    Role,
    UpdateGroup,
)
from zaphub_session_host.transport.base import (
    GroupChange,
    GroupNotFound,
    Groups,
    NotGroupAdmin,
    TransportError,
    Unsupported,
)
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import jid_str, parse_jid

if TYPE_CHECKING:
    from zaphub_session_host.transport.neonize.connection import NeonizeConnection

INVITE_BASE = "https://chat.whatsapp.com/"
_CHANGES = {
    ParticipantAction.ADD: ParticipantChange.ADD,
    ParticipantAction.REMOVE: ParticipantChange.REMOVE,
    ParticipantAction.PROMOTE: ParticipantChange.PROMOTE,
    ParticipantAction.DEMOTE: ParticipantChange.DEMOTE,
}
# whatsmeow's per-participant error codes (`GroupParticipant.Error`), as the reasons we report.
_PARTICIPANT_ERRORS = {
    403: "privacy",
    404: "not_a_participant",
    408: "recently_left",
    409: "already_a_participant",
    500: "group_full",
}
_FORBIDDEN = ("not-authorized", "forbidden", "403")
_NOT_FOUND = ("item-not-found", "404", "not a participant", "not-acceptable", "gone", "410")


def map_group_error(text: str, permission: str) -> TransportError:
    """The named error for a whatsmeow group failure; `permission` names what an admin may do."""
    low = text.lower()
    if any(s in low for s in _FORBIDDEN):
        return NotGroupAdmin(permission, text)
    if any(s in low for s in _NOT_FOUND):
        return GroupNotFound(text)
    return map_send_error(text)


def _role(p: GroupParticipant) -> Role:
    if p.IsSuperAdmin:
        return Role.SUPERADMIN
    return Role.ADMIN if p.IsAdmin else Role.MEMBER


def participant_from(p: GroupParticipant) -> Participant:
    """Phone JID first (a LID-addressed group gives it as `PhoneNumber`), LID when known."""
    jid = jid_str(p.JID)
    phone = jid_str(p.PhoneNumber) if p.HasField("PhoneNumber") else None
    lid = jid_str(p.LID) if p.HasField("LID") else None
    if jid is not None and jid.endswith("@lid"):
        lid, jid = jid, phone or jid
    return Participant(jid=jid or phone or "", lid=lid, role=_role(p))


def group_from_info(info: GroupInfo) -> Group:
    created = datetime.fromtimestamp(info.GroupCreated, UTC) if info.GroupCreated else None
    owner = jid_str(info.OwnerPN) if info.HasField("OwnerPN") else None
    return Group(
        jid=jid_str(info.JID) or "",
        subject=info.GroupName.Name,
        description=info.GroupTopic.Topic,
        owner=owner or jid_str(info.OwnerJID),
        created_at=created,
        participants=[participant_from(p) for p in info.Participants],
        settings=GroupSettings(announce=info.GroupAnnounce.IsAnnounce, locked=info.GroupLocked.isLocked),
    )


def _jids(items: Any) -> list[str]:
    return [j for j in (jid_str(x) for x in items) if j]


def changes_from_info_event(event: GroupInfoEvent) -> list[GroupChange]:
    """A `GroupInfoEvent` as the changes it reports: one update, then one per participant change."""
    group = jid_str(event.JID) or ""
    by = jid_str(event.Sender) if event.HasField("Sender") else None
    changes: list[GroupChange] = []
    settings = None
    if event.HasField("Announce") or event.HasField("Locked"):
        settings = GroupSettings(announce=event.Announce.IsAnnounce, locked=event.Locked.isLocked)
    subject = event.Name.Name if event.HasField("Name") else None
    description = event.Topic.Topic if event.HasField("Topic") else None
    if subject is not None or description is not None or settings is not None:
        changes.append(
            GroupUpdatedData(group=group, by=by, subject=subject, description=description, settings=settings)
        )
    for action, items in (
        (ParticipantAction.ADD, event.Join),
        (ParticipantAction.REMOVE, event.Leave),
        (ParticipantAction.PROMOTE, event.Promote),
        (ParticipantAction.DEMOTE, event.Demote),
    ):
        if jids := _jids(items):
            changes.append(GroupParticipantsData(group=group, action=action, participants=jids, by=by))
    return changes


def change_from_joined(event: JoinedGroup) -> GroupJoinedData:
    by = jid_str(event.SenderPN) if event.HasField("SenderPN") else None
    return GroupJoinedData(group=group_from_info(event.GroupInfo), by=by or jid_str(event.Sender))


class NeonizeGroups(Groups):
    """One session's groups through its neonize client."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "NeonizeConnection") -> None:
        self._conn = conn

    async def _call(self, permission: str, fn: Any, *args: Any) -> Any:
        self._conn.check_online()
        try:
            return await fn(*args)
        except NeonizeError as exc:
            raise map_group_error(str(exc), permission) from exc

    async def create(
        self, subject: str, participants: list[str], description: str | None
    ) -> tuple[Group, list[ParticipantResult]]:
        wanted = [parse_jid(p) for p in participants]
        info = await self._call("create_group", self._conn.client.create_group, subject, wanted)
        group = group_from_info(info)
        present = {p.jid for p in group.participants}
        results = [
            ParticipantResult(jid=j, ok=j in present, reason=None if j in present else "refused")
            for j in (jid_str(w) or "" for w in wanted)
        ]
        if description:
            await self._set_topic(group.jid, "", description)
            group = group.model_copy(update={"description": description})
        return group, results

    async def joined(self) -> list[Group]:
        infos = await self._call("read", self._conn.client.get_joined_groups)
        return [group_from_info(i) for i in infos]

    async def info(self, group: str) -> Group:
        return group_from_info(await self._call("read", self._conn.client.get_group_info, parse_jid(group)))

    async def _set_topic(self, group: str, previous_id: str, topic: str) -> None:
        new_id = secrets.token_hex(8).upper()
        client = self._conn.client
        await self._call(
            "edit_group_info", client.set_group_topic, parse_jid(group), previous_id, new_id, topic
        )

    async def update(self, change: UpdateGroup) -> Group:
        if change.join_approval is not None:
            raise Unsupported("neonize 0.5.2 cannot change join approval")
        jid, client = parse_jid(change.group), self._conn.client
        if change.subject is not None:
            await self._call("edit_group_info", client.set_group_name, jid, change.subject)
        if change.description is not None:
            current = await self._call("read", client.get_group_info, jid)
            await self._set_topic(change.group, current.GroupTopic.TopicID, change.description)
        if change.announce is not None:
            await self._call("change_settings", client.set_group_announce, jid, change.announce)
        if change.locked is not None:
            await self._call("change_settings", client.set_group_locked, jid, change.locked)
        return await self.info(change.group)

    async def set_picture(self, group: str, jpeg: bytes | None) -> str | None:
        if jpeg is None:
            raise Unsupported("neonize 0.5.2 cannot remove a group picture")
        picture_id: str = await self._call(
            "edit_group_info", self._conn.client.set_group_photo, parse_jid(group), jpeg
        )
        return picture_id

    async def participants(
        self, group: str, action: ParticipantAction, jids: list[str]
    ) -> list[ParticipantResult]:
        targets = [parse_jid(j) for j in jids]
        updated = await self._call(
            f"{action.value}_participants",
            self._conn.client.update_group_participants,
            parse_jid(group),
            targets,
            _CHANGES[action],
        )
        return [participant_result(p) for p in updated]

    async def invite_link(self, group: str, revoke: bool) -> str:
        link: str = await self._call(
            "manage_invite_link", self._conn.client.get_group_invite_link, parse_jid(group), revoke
        )
        return link if link.startswith("http") else INVITE_BASE + link

    async def join(self, code: str) -> tuple[str, bool]:
        code = code.strip().removeprefix(INVITE_BASE).strip("/")
        try:
            jid = await self._call("join", self._conn.client.join_group_with_link, code)
        except TransportError as exc:
            if "pending" in str(exc).lower() or "approval" in str(exc).lower():
                info = await self._call("join", self._conn.client.get_group_info_from_link, code)
                return jid_str(info.JID) or "", True
            raise
        return jid_str(jid) or "", False

    async def leave(self, group: str) -> None:
        await self._call("leave", self._conn.client.leave_group, parse_jid(group))

    async def join_requests(self, group: str) -> list[JoinRequest]:
        items = await self._call(
            "manage_join_requests", self._conn.client.get_group_request_participants, parse_jid(group)
        )
        return [
            JoinRequest(
                jid=jid_str(r.Participant) or "",
                requested_at=datetime.fromtimestamp(r.TimeAt, UTC) if r.TimeAt else None,
            )
            for r in items
        ]

    async def answer_requests(
        self, group: str, action: RequestAction, jids: list[str]
    ) -> list[ParticipantResult]:
        raise Unsupported("neonize 0.5.2 cannot answer join requests")


def participant_result(p: GroupParticipant) -> ParticipantResult:
    jid = participant_from(p).jid
    if not p.Error:
        return ParticipantResult(jid=jid, ok=True)
    return ParticipantResult(jid=jid, ok=False, reason=_PARTICIPANT_ERRORS.get(p.Error, f"error_{p.Error}"))
