"""REST models of groups: what a client asks of a session's groups, and what it gets back. The group
itself is the contract's `Group` (zaphub_contracts.groups), as the session-host reports it."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from zaphub_api.schemas.phones import normalise_recipient
from zaphub_contracts.groups import (
    MAX_PARTICIPANTS,
    Group,
    JoinRequest,
    ParticipantAction,
    ParticipantResult,
    RequestAction,
)


def _user(value: str) -> str:
    jid = normalise_recipient(value)
    if jid.endswith("@g.us"):
        raise ValueError("a participant is a person (E.164 number or user JID), not a group")
    return jid


Person = Annotated[str, AfterValidator(_user), Field(examples=["+5511999998888"])]
People = Annotated[
    list[Person],
    Field(
        min_length=1,
        max_length=MAX_PARTICIPANTS,
        examples=[["+5511999998888", "5511977776666@s.whatsapp.net"]],
    ),
]


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=100, examples=["Order 1042"])
    participants: People
    description: str | None = Field(default=None, max_length=2048, examples=["Delivery updates"])


class GroupCreated(Group):
    refused: list[ParticipantResult] = Field(
        default_factory=list, description="Participants WhatsApp did not add, each with its reason"
    )


class GroupUpdate(BaseModel):
    """Any of the fields; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=100, examples=["Order 1042 (shipped)"])
    description: str | None = Field(default=None, max_length=2048, examples=["Delivery updates"])
    announce: bool | None = Field(default=None, description="Only admins may send", examples=[True])
    locked: bool | None = Field(default=None, description="Only admins may edit the group's info")
    join_approval: bool | None = Field(default=None, description="Joining by link needs an admin's approval")


class PictureSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(
        min_length=4, max_length=8_000_000, description="A JPEG, base64", examples=["/9j/4AAQSkZJRgABAQ..."]
    )


class ParticipantsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ParticipantAction = Field(examples=["add"])
    participants: People


class ParticipantResults(BaseModel):
    group: str
    action: str
    results: list[ParticipantResult]


class InviteLinkRead(BaseModel):
    group: str
    invite_link: str = Field(examples=["https://chat.whatsapp.com/AbCdEfGhIjK"])


class GroupJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invite: str = Field(
        min_length=1,
        max_length=200,
        description="An invite link or its code",
        examples=["https://chat.whatsapp.com/AbCdEfGhIjK"],
    )


class GroupJoined(BaseModel):
    group: str | None = Field(
        description="The group's JID; null only when pending and the session-host could not tell it",
        examples=["120363025246125486@g.us"],
    )
    pending: bool = Field(description="The group needs an admin's approval; a join request was made")
    info: Group | None = Field(default=None, description="The group, once joined; null while pending")


class JoinRequests(BaseModel):
    group: str
    requests: list[JoinRequest]


class JoinRequestsAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: RequestAction = Field(examples=["approve"])
    participants: People
