"""Tenant routes: a session's WhatsApp groups (services/groups.py). Reads are asked of the owning host;
writes are commands the dispatcher carries out in the session's order, creating a group and adding
participants each counting one message against the tenant's rate limits (docs/groups.md)."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
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
from zaphub_api.services.groups import GroupService
from zaphub_contracts import groups as g

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
GROUP = Annotated[str, Parameter(description="The group's JID, e.g. 120363025246125486@g.us")]
WRITE = problem_responses(409, 429, 503)
READ = problem_responses(409, 503)


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
        group_service: NamedDependency[GroupService],
    ) -> GroupCreated:
        return await group_service.create(tenant_id, session_id, data)

    @get("/", summary="The groups the session's account is in", responses=READ)
    async def list_groups(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group_service: NamedDependency[GroupService],
    ) -> list[g.Group]:
        return await group_service.list_groups(tenant_id, session_id)

    @get("/{group:str}", summary="One group: subject, participants and their roles, settings", responses=READ)
    async def get_group(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        group_service: NamedDependency[GroupService],
    ) -> g.Group:
        return await group_service.get(tenant_id, session_id, group)

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
        group_service: NamedDependency[GroupService],
    ) -> g.Group:
        return await group_service.update(tenant_id, session_id, group, data)

    @put("/{group:str}/picture", summary="Set the group's picture (a JPEG)", responses=WRITE)
    async def set_picture(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        data: JSONBody[PictureSet],
        group_service: NamedDependency[GroupService],
    ) -> g.Group:
        return await group_service.set_picture(tenant_id, session_id, group, data.image_base64)

    @delete("/{group:str}/picture", status_code=200, summary="Remove the group's picture", responses=WRITE)
    async def remove_picture(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        group_service: NamedDependency[GroupService],
    ) -> g.Group:
        return await group_service.set_picture(tenant_id, session_id, group, None)

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
        group_service: NamedDependency[GroupService],
    ) -> ParticipantResults:
        return await group_service.participants(tenant_id, session_id, group, data)

    @get("/{group:str}/invite-link", summary="The group's invite link (admins only)", responses=READ)
    async def invite_link(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        group_service: NamedDependency[GroupService],
    ) -> InviteLinkRead:
        return await group_service.invite_link(tenant_id, session_id, group)

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
        group_service: NamedDependency[GroupService],
    ) -> InviteLinkRead:
        return await group_service.revoke_invite_link(tenant_id, session_id, group)

    @post(
        "/join",
        status_code=200,
        summary="Join a group by its invite link or code",
        description=(
            "When the group needs approval, `pending` is true, `info` is null and the admins get a join"
            " request; `group` is the group's JID when the session-host knows it, null otherwise."
        ),
        responses=WRITE,
    )
    async def join(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[GroupJoin],
        group_service: NamedDependency[GroupService],
    ) -> GroupJoined:
        return await group_service.join(tenant_id, session_id, data)

    @post("/{group:str}/leave", status_code=204, summary="Leave the group", responses=WRITE)
    async def leave(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        group_service: NamedDependency[GroupService],
    ) -> None:
        await group_service.leave(tenant_id, session_id, group)

    @get("/{group:str}/requests", summary="Pending join requests (admins only)", responses=READ)
    async def join_requests(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        group: GROUP,
        group_service: NamedDependency[GroupService],
    ) -> JoinRequests:
        return await group_service.join_requests(tenant_id, session_id, group)

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
        group_service: NamedDependency[GroupService],
    ) -> ParticipantResults:
        return await group_service.answer_join_requests(tenant_id, session_id, group, data)
