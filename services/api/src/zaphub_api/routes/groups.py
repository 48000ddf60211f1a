"""Tenant routes: a session's WhatsApp groups, asked of the session-host that owns the session.

Every route is one `group` host request (zaphub_contracts.groups); creating a group and adding
participants first take one rate-limit token each, as a message does (see docs/groups.md for why
writes are host requests and not commands).
"""

import re
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import InvalidField
from zaphub_api.errors import problem_responses
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
    PictureSet,
)
from zaphub_api.store.sessions import SessionStore
from zaphub_api.usage import UsageClient
from zaphub_contracts import groups as g

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
GROUP = Annotated[str, Parameter(description="The group's JID, e.g. 120363025246125486@g.us")]
_GROUP_JID = re.compile(r"^[0-9]{5,20}(-[0-9]{5,12})?@g\.us$")
WRITE = problem_responses(409, 429, 503)
READ = problem_responses(409, 503)


def _group(value: str) -> str:
    if not _GROUP_JID.match(value):
        raise InvalidField("group", "must be a group JID such as 120363025246125486@g.us")
    return value


class GroupController(Controller):
    path = "/api/v1/sessions/{session_id:uuid}/groups"
    tags = ["groups"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post("/", summary="Create a group with the session's account as its superadmin", responses=WRITE)
    async def create(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[GroupCreate],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
        usage: NamedDependency[UsageClient],
    ) -> GroupCreated:
        await sessions.get(tenant_id, session_id)
        await usage.take(tenant_id)
        action = g.CreateGroup(
            subject=data.subject, participants=data.participants, description=data.description
        )
        reply = await hosts.group(tenant_id, session_id, action)
        assert reply.group is not None
        refused = [r for r in reply.results if not r.ok]
        return GroupCreated(**reply.group.model_dump(), refused=refused)

    @get("/", summary="The groups the session's account is in", responses=READ)
    async def list_groups(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> list[g.Group]:
        await sessions.get(tenant_id, session_id)
        return (await hosts.group(tenant_id, session_id, g.ListGroups())).groups

    @get("/{group:str}", summary="One group: subject, participants and their roles, settings", responses=READ)
    async def get_group(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> g.Group:
        await sessions.get(tenant_id, session_id)
        reply = await hosts.group(tenant_id, session_id, g.GetGroup(group=_group(group)))
        assert reply.group is not None
        return reply.group

    @patch(
        "/{group:str}",
        summary="Change the subject, description or settings",
        description="Settings need an admin; subject and description too while the group is `locked`.",
        responses=WRITE,
    )
    async def update(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        data: JSONBody[GroupUpdate],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> g.Group:
        await sessions.get(tenant_id, session_id)
        if not data.model_fields_set:
            raise InvalidField(
                "body", "give at least one of subject, description, announce, locked, join_approval"
            )
        action = g.UpdateGroup(group=_group(group), **data.model_dump(exclude_unset=True))
        reply = await hosts.group(tenant_id, session_id, action)
        assert reply.group is not None
        return reply.group

    @put("/{group:str}/picture", summary="Set the group's picture (a JPEG)", responses=WRITE)
    async def set_picture(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        data: JSONBody[PictureSet],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> g.Group:
        await sessions.get(tenant_id, session_id)
        reply = await hosts.group(
            tenant_id, session_id, g.SetPicture(group=_group(group), image=data.image_base64)
        )
        assert reply.group is not None
        return reply.group

    @delete("/{group:str}/picture", status_code=200, summary="Remove the group's picture", responses=WRITE)
    async def remove_picture(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> g.Group:
        await sessions.get(tenant_id, session_id)
        reply = await hosts.group(tenant_id, session_id, g.SetPicture(group=_group(group), image=None))
        assert reply.group is not None
        return reply.group

    @post(
        "/{group:str}/participants",
        status_code=200,
        summary="Add, remove, promote or demote participants: a result per participant",
        description="Admins only. Adding counts one message against the tenant's rate limits.",
        responses=WRITE,
    )
    async def participants(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        data: JSONBody[ParticipantsChange],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
        usage: NamedDependency[UsageClient],
    ) -> ParticipantResults:
        await sessions.get(tenant_id, session_id)  # first: another tenant's session is a 404
        jid = _group(group)
        if data.action is g.ParticipantAction.ADD:
            await usage.take(tenant_id)
        action = g.UpdateParticipants(group=jid, action=data.action, participants=data.participants)
        reply = await hosts.group(tenant_id, session_id, action)
        return ParticipantResults(group=jid, action=data.action.value, results=reply.results)

    @get("/{group:str}/invite-link", summary="The group's invite link (admins only)", responses=READ)
    async def invite_link(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> InviteLinkRead:
        return await _invite(tenant_id, session_id, group, False, sessions, hosts)

    @post(
        "/{group:str}/invite-link/revoke",
        status_code=200,
        summary="Void the invite link and make a new one (admins only)",
        responses=WRITE,
    )
    async def revoke_invite_link(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> InviteLinkRead:
        return await _invite(tenant_id, session_id, group, True, sessions, hosts)

    @post(
        "/join",
        status_code=200,
        summary="Join a group by its invite link or code",
        description="When the group needs approval, `pending` is true and the admins get a join request.",
        responses=WRITE,
    )
    async def join(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[GroupJoin],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> GroupJoined:
        await sessions.get(tenant_id, session_id)
        reply = await hosts.group(tenant_id, session_id, g.JoinGroup(code=data.invite))
        jid = reply.group.jid if reply.group is not None else ""
        return GroupJoined(group=jid, pending=reply.pending, info=reply.group)

    @post("/{group:str}/leave", status_code=204, summary="Leave the group", responses=WRITE)
    async def leave(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> None:
        await sessions.get(tenant_id, session_id)
        await hosts.group(tenant_id, session_id, g.LeaveGroup(group=_group(group)))

    @get("/{group:str}/requests", summary="Pending join requests (admins only)", responses=READ)
    async def join_requests(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> JoinRequests:
        await sessions.get(tenant_id, session_id)  # first: another tenant's session is a 404
        jid = _group(group)
        reply = await hosts.group(tenant_id, session_id, g.ListJoinRequests(group=jid))
        return JoinRequests(group=jid, requests=reply.requests)

    @post(
        "/{group:str}/requests",
        status_code=200,
        summary="Approve or reject join requests (admins only): a result per participant",
        responses=WRITE,
    )
    async def answer_join_requests(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        data: JSONBody[JoinRequestsAnswer],
        sessions: NamedDependency[SessionStore],
        hosts: NamedDependency[HostRequests],
    ) -> ParticipantResults:
        await sessions.get(tenant_id, session_id)  # first: another tenant's session is a 404
        jid = _group(group)
        action = g.AnswerJoinRequests(group=jid, action=data.action, participants=data.participants)
        reply = await hosts.group(tenant_id, session_id, action)
        return ParticipantResults(group=jid, action=data.action.value, results=reply.results)


async def _invite(
    tenant_id: UUID, session_id: UUID, group: str, revoke: bool, sessions: SessionStore, hosts: HostRequests
) -> InviteLinkRead:
    await sessions.get(tenant_id, session_id)
    jid = _group(group)
    reply = await hosts.group(tenant_id, session_id, g.InviteLink(group=jid, revoke=revoke))
    return InviteLinkRead(group=jid, invite_link=reply.invite_link or "")
