"""WhatsApp groups: the group as a transport reports it, the `group` host op (one typed action per
request) and its reply, and the group command that carries the writes through the dispatcher. The REST
schemas and the `group.*` events are built from these models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zaphub_contracts.commands import CommandBase
from zaphub_contracts.host import HostError
from zaphub_contracts.ratelimit import WindowName

# Replies go to a core NATS inbox of the requester only, never to a subject of ZapHub's own.
INBOX_PATTERN = r"^_INBOX\.[A-Za-z0-9_.-]{1,200}$"
MAX_PARTICIPANTS = 1024  # per request, as WhatsApp caps a group's size
Jid = Annotated[str, Field(min_length=3, max_length=80, examples=["5511999990000@s.whatsapp.net"])]


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"
    SUPERADMIN = "superadmin"


class Participant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    jid: Jid = Field(description="Phone-number JID")
    lid: str | None = Field(default=None, description="LID, when known")
    role: Role = Role.MEMBER


class GroupSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    announce: bool = Field(default=False, description="Only admins may send messages")
    locked: bool = Field(default=False, description="Only admins may edit the group's info")
    join_approval: bool = Field(default=False, description="Joining by link needs an admin's approval")


class Group(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    jid: str = Field(examples=["120363025246125486@g.us"])
    subject: str
    description: str = ""
    owner: str | None = Field(default=None, description="JID of the creator")
    created_at: datetime | None = None
    participants: list[Participant] = Field(default_factory=list)
    settings: GroupSettings = Field(default_factory=GroupSettings)
    picture_id: str | None = None


class ParticipantAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    PROMOTE = "promote"
    DEMOTE = "demote"


class RequestAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ParticipantResult(BaseModel):
    """What happened to one participant of a request: `ok`, or the reason WhatsApp refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    jid: str
    ok: bool
    reason: str | None = Field(
        default=None, examples=["not_on_whatsapp", "privacy", "not_a_participant", "already_a_participant"]
    )


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    jid: str
    lid: str | None = None
    requested_at: datetime | None = None


# The actions of the `group` host op, one model each (`kind` tells them apart).


class CreateGroup(BaseModel):
    kind: Literal["create"] = "create"
    subject: str = Field(min_length=1, max_length=100)
    participants: list[Jid] = Field(default_factory=list, max_length=MAX_PARTICIPANTS)
    description: str | None = Field(default=None, max_length=2048)


class ListGroups(BaseModel):
    kind: Literal["list"] = "list"


class GetGroup(BaseModel):
    kind: Literal["get"] = "get"
    group: Jid


class UpdateGroup(BaseModel):
    """Any of the fields; those left out stay as they are."""

    kind: Literal["update"] = "update"
    group: Jid
    subject: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2048)
    announce: bool | None = None
    locked: bool | None = None
    join_approval: bool | None = None


class SetPicture(BaseModel):
    """Set (`image` base64 JPEG) or remove (`image` None) the group's picture."""

    kind: Literal["picture"] = "picture"
    group: Jid
    image: str | None = Field(default=None, max_length=8_000_000)


class UpdateParticipants(BaseModel):
    kind: Literal["participants"] = "participants"
    group: Jid
    action: ParticipantAction
    participants: list[Jid] = Field(min_length=1, max_length=MAX_PARTICIPANTS)


class InviteLink(BaseModel):
    kind: Literal["invite_link"] = "invite_link"
    group: Jid
    revoke: bool = False


class JoinGroup(BaseModel):
    kind: Literal["join"] = "join"
    code: str = Field(min_length=1, max_length=200, description="The code of a chat.whatsapp.com link")


class LeaveGroup(BaseModel):
    kind: Literal["leave"] = "leave"
    group: Jid


class ListJoinRequests(BaseModel):
    kind: Literal["requests"] = "requests"
    group: Jid


class AnswerJoinRequests(BaseModel):
    kind: Literal["answer_requests"] = "answer_requests"
    group: Jid
    action: RequestAction
    participants: list[Jid] = Field(min_length=1, max_length=MAX_PARTICIPANTS)


GroupAction = Annotated[
    CreateGroup
    | ListGroups
    | GetGroup
    | UpdateGroup
    | SetPicture
    | UpdateParticipants
    | InviteLink
    | JoinGroup
    | LeaveGroup
    | ListJoinRequests
    | AnswerJoinRequests,
    Field(discriminator="kind"),
]
# The actions that change WhatsApp state: `GroupCommand`s on ZAPHUB_CMD, in the session's
# order through the dispatcher. The others are reads, asked of the owning host directly. `invite_link`
# is a write only with `revoke`.
WriteAction = (
    CreateGroup
    | UpdateGroup
    | SetPicture
    | UpdateParticipants
    | InviteLink
    | JoinGroup
    | LeaveGroup
    | AnswerJoinRequests
)
GroupWrite = Annotated[WriteAction, Field(discriminator="kind")]


class GroupRequest(BaseModel):
    """Body of the `group` host op: one action on the session's groups."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    action: GroupAction


class GroupReply(BaseModel):
    """The answer to a `group` request; which fields are set depends on the action."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["group"] = "group"
    host_id: str
    group: Group | None = None
    groups: list[Group] = Field(default_factory=list)
    results: list[ParticipantResult] = Field(default_factory=list)
    invite_link: str | None = None
    requests: list[JoinRequest] = Field(default_factory=list)
    pending: bool = Field(default=False, description="For join: the admins must approve first")


class GroupCommand(CommandBase):
    """A `GroupWrite` on ZAPHUB_CMD: carried out in the session's order through the dispatcher and its
    rate limits, answered on `reply_to` (`GroupCommandReply`), and never carried out after `expires_at`
    (by then the requester has given up)."""

    command_id: UUID = Field(description="Unique per command; also the JetStream Nats-Msg-Id")
    action: GroupWrite
    reply_to: str = Field(pattern=INBOX_PATTERN, description="Core NATS inbox the requester listens on")
    expires_at: AwareDatetime = Field(description="Not carried out after this instant")


class CommandRateLimited(BaseModel):
    """The command counts against the tenant's rate limits and found no room: it was not carried out."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["rate_limited"] = "rate_limited"
    retry_after: float = Field(ge=0, description="Seconds until the tightest window frees")
    window: WindowName | None = None


# What the dispatcher answers a group command with: the host's reply or refusal, or the rate limit's.
GroupCommandReply = Annotated[GroupReply | HostError | CommandRateLimited, Field(discriminator="status")]


def takes_token(action: WriteAction) -> bool:
    """Creating a group and adding participants count one message each: the actions spammers abuse."""
    return isinstance(action, CreateGroup) or (
        isinstance(action, UpdateParticipants) and action.action is ParticipantAction.ADD
    )
