"""The groups capability: creating and managing WhatsApp groups, their participants, invite links and
join requests. Values in and out are the contract's group models (`zaphub_contracts.groups`); what
changes in a group arrives through `ConnectionEvents.on_group`."""

from abc import ABC, abstractmethod

from zaphub_contracts.groups import (
    Group,
    JoinRequest,
    ParticipantAction,
    ParticipantResult,
    RequestAction,
    UpdateGroup,
)


class Groups(ABC):
    """One session's groups; every method raises `GroupNotFound` for a group the account is not in,
    and `NotGroupAdmin` when WhatsApp allows the change to admins only."""

    __slots__ = ()

    @abstractmethod
    async def create(
        self, subject: str, participants: list[str], description: str | None
    ) -> tuple[Group, list[ParticipantResult]]:
        """A new group with the account as its superadmin; the refused participants say why."""

    @abstractmethod
    async def joined(self) -> list[Group]:
        """The groups the account is in."""

    @abstractmethod
    async def info(self, group: str) -> Group: ...

    @abstractmethod
    async def update(self, change: UpdateGroup) -> Group:
        """Apply the fields of `change` that are set."""

    @abstractmethod
    async def set_picture(self, group: str, jpeg: bytes | None) -> str | None:
        """Set the picture (None removes it); the new picture's id."""

    @abstractmethod
    async def participants(
        self, group: str, action: ParticipantAction, jids: list[str]
    ) -> list[ParticipantResult]: ...

    @abstractmethod
    async def invite_link(self, group: str, revoke: bool) -> str:
        """The group's invite link; `revoke` makes a new one and voids the old."""

    @abstractmethod
    async def join(self, code: str) -> tuple[Group, bool]:
        """Join by an invite link's code: the group, and whether an admin must approve first (then
        the group as its link shows it to someone not yet in it)."""

    @abstractmethod
    async def leave(self, group: str) -> None: ...

    @abstractmethod
    async def join_requests(self, group: str) -> list[JoinRequest]: ...

    @abstractmethod
    async def answer_requests(
        self, group: str, action: RequestAction, jids: list[str]
    ) -> list[ParticipantResult]: ...
