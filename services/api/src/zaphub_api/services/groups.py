"""Group use cases: reads asked of the owning host, writes carried out as commands through the
dispatcher (docs/groups.md). The session is looked up first, so another tenant's is a 404 before
anything else is said about the request."""

import re
from uuid import UUID

from zaphub_api.domain_errors import HostUnavailable, InvalidField
from zaphub_api.group_commands import GroupCommands
from zaphub_api.host_requests import HostRequests
from zaphub_api.schemas.groups import (
    GroupCreate,
    GroupCreated,
    GroupJoin,
    GroupJoined,
    GroupUpdate,
    InviteLinkRead,
    JoinRequests,
    JoinRequestsAnswer,
    ParticipantResults,
    ParticipantsChange,
)
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts import groups as g

_GROUP_JID = re.compile(r"^[0-9]{5,20}(-[0-9]{5,12})?@g\.us$")


def group_jid(value: str) -> str:
    """`{group}` of a path, checked after the session so another tenant's session is a 404."""
    if not _GROUP_JID.match(value):
        raise InvalidField("group", "must be a group JID such as 120363025246125486@g.us")
    return value


def _the_group(reply: g.GroupReply) -> g.Group:
    if reply.group is None:
        raise HostUnavailable("The session-host answered without the group; retry")
    return reply.group


class GroupService:
    def __init__(self, sessions: SessionStore, hosts: HostRequests, commands: GroupCommands) -> None:
        self._sessions = sessions
        self._hosts = hosts
        self._commands = commands

    async def create(self, tenant_id: UUID, session_id: UUID, data: GroupCreate) -> GroupCreated:
        await self._sessions.get(tenant_id, session_id)
        action = g.CreateGroup(
            subject=data.subject, participants=data.participants, description=data.description
        )
        reply = await self._commands.run(tenant_id, session_id, action)
        refused = [r for r in reply.results if not r.ok]
        return GroupCreated(**_the_group(reply).model_dump(), refused=refused)

    async def list_groups(self, tenant_id: UUID, session_id: UUID) -> list[g.Group]:
        await self._sessions.get(tenant_id, session_id)
        return (await self._hosts.group(tenant_id, session_id, g.ListGroups())).groups

    async def get(self, tenant_id: UUID, session_id: UUID, group: str) -> g.Group:
        await self._sessions.get(tenant_id, session_id)
        reply = await self._hosts.group(tenant_id, session_id, g.GetGroup(group=group_jid(group)))
        return _the_group(reply)

    async def update(self, tenant_id: UUID, session_id: UUID, group: str, data: GroupUpdate) -> g.Group:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        if not data.model_fields_set:
            raise InvalidField(
                "body", "give at least one of subject, description, announce, locked, join_approval"
            )
        action = g.UpdateGroup(group=jid, **data.model_dump(exclude_unset=True))
        return _the_group(await self._commands.run(tenant_id, session_id, action))

    async def set_picture(self, tenant_id: UUID, session_id: UUID, group: str, image: str | None) -> g.Group:
        """Set (`image`, a base64 JPEG) or remove (None) the group's picture."""
        await self._sessions.get(tenant_id, session_id)
        action = g.SetPicture(group=group_jid(group), image=image)
        return _the_group(await self._commands.run(tenant_id, session_id, action))

    async def participants(
        self, tenant_id: UUID, session_id: UUID, group: str, data: ParticipantsChange
    ) -> ParticipantResults:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        action = g.UpdateParticipants(group=jid, action=data.action, participants=data.participants)
        reply = await self._commands.run(tenant_id, session_id, action)
        return ParticipantResults(group=jid, action=data.action.value, results=reply.results)

    async def invite_link(self, tenant_id: UUID, session_id: UUID, group: str) -> InviteLinkRead:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        reply = await self._hosts.group(tenant_id, session_id, g.InviteLink(group=jid))
        return InviteLinkRead(group=jid, invite_link=reply.invite_link or "")

    async def revoke_invite_link(self, tenant_id: UUID, session_id: UUID, group: str) -> InviteLinkRead:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        reply = await self._commands.run(tenant_id, session_id, g.InviteLink(group=jid, revoke=True))
        return InviteLinkRead(group=jid, invite_link=reply.invite_link or "")

    async def join(self, tenant_id: UUID, session_id: UUID, data: GroupJoin) -> GroupJoined:
        await self._sessions.get(tenant_id, session_id)
        reply = await self._commands.run(tenant_id, session_id, g.JoinGroup(code=data.invite))
        jid = reply.group.jid if reply.group is not None else None
        # Pending: the account is not in the group yet, so what the host knows of it is not its info.
        info = None if reply.pending else reply.group
        return GroupJoined(group=jid, pending=reply.pending, info=info)

    async def leave(self, tenant_id: UUID, session_id: UUID, group: str) -> None:
        await self._sessions.get(tenant_id, session_id)
        await self._commands.run(tenant_id, session_id, g.LeaveGroup(group=group_jid(group)))

    async def join_requests(self, tenant_id: UUID, session_id: UUID, group: str) -> JoinRequests:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        reply = await self._hosts.group(tenant_id, session_id, g.ListJoinRequests(group=jid))
        return JoinRequests(group=jid, requests=reply.requests)

    async def answer_join_requests(
        self, tenant_id: UUID, session_id: UUID, group: str, data: JoinRequestsAnswer
    ) -> ParticipantResults:
        await self._sessions.get(tenant_id, session_id)
        jid = group_jid(group)
        action = g.AnswerJoinRequests(group=jid, action=data.action, participants=data.participants)
        reply = await self._commands.run(tenant_id, session_id, action)
        return ParticipantResults(group=jid, action=data.action.value, results=reply.results)
