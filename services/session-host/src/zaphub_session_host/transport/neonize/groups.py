"""Groups through neonize: whatsmeow's group calls (`create_group`, `get_group_info`,
`get_joined_groups`, `update_group_participants`, the `set_group_*` setters, invite links,
`leave_group`, `get_group_request_participants`), and its group events (`JoinedGroup`,
`GroupInfoEvent`, `Picture`) as `group.*` changes.

`group_from_info`, `changes_from_info_event`, `change_from_picture` and `change_from_joined` are pure,
so what is built from whatsmeow's types can be checked without a connection. neonize 0.5.2 offers no
call to answer join requests, to turn join approval on or off, or to remove a picture: those are
`Unsupported` (docs/groups.md lists what it cannot report).
"""

import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import (
    GroupInfo,
    GroupInfoEvent,
    GroupParticipant,
    JoinedGroup,
    Node,
    Picture,
)
from neonize.utils.enum import ParticipantChange

from zaphub_contracts.events import (
    GroupJoinedData,
    GroupJoinRequestData,
    GroupLeftData,
    GroupParticipantsData,
    GroupUpdatedData,
)
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
# whatsmeow's own wording first (ErrNotInGroup, ErrGroupNotFound, ErrInviteLinkInvalid/Revoked), then
# the IQ codes it wraps. Not-found is checked first: a non-member's refusal is an IQ 403 ("you're not
# participating in that group"), which is a 404 to the client, not a missing admin right.
_NOT_FOUND = (
    "not participating",
    "does not exist",
    "invite link is not valid",
    "invite link has been revoked",
    "item-not-found",
    "404",
    "not a participant",
    "not-acceptable",
    "gone",
    "410",
)
_FORBIDDEN = ("don't have the permission", "not-authorized", "forbidden", "401", "403")
_PENDING = ("pending", "approval")


def map_group_error(text: str, permission: str) -> TransportError:
    """The named error for a whatsmeow group failure; `permission` names what an admin may do."""
    low = text.lower()
    if any(s in low for s in _NOT_FOUND):
        return GroupNotFound(text)
    if any(s in low for s in _FORBIDDEN):
        return NotGroupAdmin(permission, text)
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
        # Those WhatsApp refused (an error, or an invitation to send instead) are not members.
        participants=[participant_from(p) for p in info.Participants if _is_member(p)],
        settings=GroupSettings(announce=info.GroupAnnounce.IsAnnounce, locked=info.GroupLocked.isLocked),
    )


def _is_member(p: GroupParticipant) -> bool:
    return not p.Error and not p.HasField("AddRequest")


def _jids(items: Any) -> list[str]:
    return [j for j in (jid_str(x) for x in items) if j]


def carries_settings(event: GroupInfoEvent) -> bool:
    return bool(event.HasField("Announce") or event.HasField("Locked"))


def changes_from_info_event(
    event: GroupInfoEvent, me: frozenset[str] = frozenset(), current: GroupSettings | None = None
) -> list[GroupChange]:
    """A `GroupInfoEvent` as the changes it reports: one update, then one per participant change,
    then `group.left` when the account itself (`me`: its JID and LID) left, was removed, or the group
    was deleted. An event carries only the settings that changed: the others come from `current`
    (the group as it is now), and without it the settings are not reported rather than guessed."""
    group = jid_str(event.JID) or ""
    by = jid_str(event.Sender) if event.HasField("Sender") else None
    changes: list[GroupChange] = []
    settings = None
    if carries_settings(event) and current is not None:
        update: dict[str, bool] = {}
        if event.HasField("Announce"):
            update["announce"] = event.Announce.IsAnnounce
        if event.HasField("Locked"):
            update["locked"] = event.Locked.isLocked
        settings = current.model_copy(update=update)
    subject = event.Name.Name if event.HasField("Name") else None
    description = event.Topic.Topic if event.HasField("Topic") else None
    if subject is not None or description is not None or settings is not None:
        changes.append(
            GroupUpdatedData(group=group, by=by, subject=subject, description=description, settings=settings)
        )
    left = False
    for action, items in (
        (ParticipantAction.ADD, event.Join),
        (ParticipantAction.REMOVE, event.Leave),
        (ParticipantAction.PROMOTE, event.Promote),
        (ParticipantAction.DEMOTE, event.Demote),
    ):
        jids = _jids(items)
        if action is ParticipantAction.REMOVE and me.intersection(jids):
            left = True
            jids = [j for j in jids if j not in me]
        if jids:
            changes.append(GroupParticipantsData(group=group, action=action, participants=jids, by=by))
    changes.extend(_join_requests(group, event.UnknownChanges))
    if left or (event.HasField("Delete") and event.Delete.Deleted):
        changes.append(GroupLeftData(group=group, by=by))  # as the simulator: itself when it left
    return changes


# whatsmeow 0.5.2's parser keeps the join-request notification (`created_membership_requests`, or a
# `membership_approval_request` list) among its unknown changes; the asking user is its `jid` attribute.
_REQUEST_TAGS = frozenset({"created_membership_requests", "membership_approval_requests"})


def _join_requests(group: str, nodes: Any) -> list[GroupChange]:
    out: list[GroupChange] = []
    for node in nodes:
        if node.Tag not in _REQUEST_TAGS:
            continue
        for child in [node, *node.Nodes]:
            if jid := _attr_jid(child):
                lid = jid if jid.endswith("@lid") else None
                out.append(GroupJoinRequestData(group=group, jid=jid, lid=lid))
    return out


def _attr_jid(node: Node) -> str | None:
    for attr in node.Attrs:
        if attr.name == "jid":
            return jid_str(attr.jid) if attr.HasField("jid") else (attr.text or None)
    return None


def change_from_picture(event: Picture) -> GroupUpdatedData | None:
    """A group's new or removed picture (whatsmeow's `Picture` carries no picture id), or None for a
    contact's picture."""
    group = jid_str(event.JID)
    if group is None or not group.endswith("@g.us"):
        return None
    by = jid_str(event.Author) if event.HasField("Author") else None
    return GroupUpdatedData(group=group, by=by, picture_removed=event.Remove)


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
        # Each wanted participant as WhatsApp answered for it (by phone JID or LID); one it did not
        # mention at all was refused without a reason.
        answered: dict[str, ParticipantResult] = {}
        for p in info.Participants:
            result = participant_result(p)
            for key in (result.jid, jid_str(p.JID), jid_str(p.LID), jid_str(p.PhoneNumber)):
                if key:
                    answered.setdefault(key, result)
        results = [
            answered.get(j) or ParticipantResult(jid=j, ok=False, reason="refused")
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

    async def join(self, code: str) -> tuple[Group, bool]:
        code = code.strip().removeprefix(INVITE_BASE).strip("/")
        client = self._conn.client
        try:
            jid = await self._call("join", client.join_group_with_link, code)
        except TransportError as exc:
            if not any(s in str(exc).lower() for s in _PENDING):
                raise
            return await self._preview(code), True
        try:
            return await self.info(jid_str(jid) or ""), False
        except GroupNotFound:
            # whatsmeow answers a join that waits for an admin's approval with the group's JID and no
            # error; the account is not a member yet, so only the link's preview can be read.
            return await self._preview(code), True

    async def _preview(self, code: str) -> Group:
        """The group as its invite link shows it to someone not in it."""
        return group_from_info(await self._call("join", self._conn.client.get_group_info_from_link, code))

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
    """`ok`, or why WhatsApp refused: its error code, or an `AddRequest` (the person's privacy
    settings let only an invitation through)."""
    jid = participant_from(p).jid
    if p.Error:
        return ParticipantResult(
            jid=jid, ok=False, reason=_PARTICIPANT_ERRORS.get(p.Error, f"error_{p.Error}")
        )
    if p.HasField("AddRequest"):
        return ParticipantResult(jid=jid, ok=False, reason="privacy")
    return ParticipantResult(jid=jid, ok=True)
