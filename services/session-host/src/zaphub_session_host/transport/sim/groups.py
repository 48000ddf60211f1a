"""Groups in the simulator: the groups of the simulated network (`GroupDirectory`, one per network)
and one session's view of them (`SimGroups`), with WhatsApp's admin rules.

- Creating makes the account superadmin. Numbers starting `999` are not on WhatsApp and numbers
  starting `998` only accept invitations (privacy): both are refused with that reason.
- Admins add, remove, promote and demote; nobody but the superadmin demotes or removes it.
- `announce`: only admins send. `locked`: only admins change subject, description and picture.
  The settings themselves, invite links and join requests are for admins.
- `join_approval`: joining by link makes a join request the admins answer.
- Every change reaches every member online in the network as its `group.*` event; a message to the
  group reaches every member but the sender (messages.py calls `deliver`).
"""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

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
from zaphub_session_host.transport.base import GroupChange, GroupNotFound, Groups, NotGroupAdmin

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection, SimIdentity

NOT_ON_WHATSAPP_PREFIX = "999"
PRIVACY_PREFIX = "998"
INVITE_BASE = "https://chat.whatsapp.com/"


def user_jid(value: str) -> str:
    """A participant as the network knows it: a phone-number JID."""
    return value if "@" in value else f"{value.lstrip('+')}@s.whatsapp.net"


def invite_code(value: str) -> str:
    """The code of an invite link, or the code itself."""
    return value.strip().removeprefix(INVITE_BASE).strip("/")


@dataclass
class SimGroup:
    jid: str
    subject: str
    description: str
    owner: str
    created_at: datetime
    roles: dict[str, Role] = field(default_factory=dict)  # member JID -> role, in joining order
    settings: GroupSettings = field(default_factory=GroupSettings)
    picture_id: str | None = None
    invite: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    requests: dict[str, datetime] = field(default_factory=dict)  # asking JID -> since

    def is_admin(self, jid: str) -> bool:
        return self.roles.get(jid, Role.MEMBER) in (Role.ADMIN, Role.SUPERADMIN)


class GroupDirectory:
    """Every group of the simulated network, and who of its members is online to hear about it."""

    def __init__(self, online: "dict[str, SimConnection]") -> None:
        self._online = online
        self._groups: dict[str, SimGroup] = {}

    def new(self, subject: str, description: str, owner: str) -> SimGroup:
        jid = f"120363{secrets.randbelow(10**12):012d}@g.us"
        group = SimGroup(jid, subject, description, owner, datetime.now(UTC), {owner: Role.SUPERADMIN})
        self._groups[jid] = group
        return group

    def get(self, jid: str) -> SimGroup | None:
        return self._groups.get(jid)

    def by_invite(self, code: str) -> SimGroup | None:
        return next((g for g in self._groups.values() if g.invite == code), None)

    def of_member(self, jid: str) -> list[SimGroup]:
        return [g for g in self._groups.values() if jid in g.roles]

    def lid(self, jid: str) -> str | None:
        conn = self._online.get(jid)
        identity = conn.identity if conn is not None else None
        return identity.lid if identity is not None else None

    def view(self, group: SimGroup) -> Group:
        return Group(
            jid=group.jid,
            subject=group.subject,
            description=group.description,
            owner=group.owner,
            created_at=group.created_at,
            participants=[Participant(jid=j, lid=self.lid(j), role=r) for j, r in group.roles.items()],
            settings=group.settings,
            picture_id=group.picture_id,
        )

    def tell(self, jids: Iterable[str], change: GroupChange) -> None:
        for jid in jids:
            conn = self._online.get(jid)
            if conn is not None and not conn.closed:
                conn.events.on_group(change)

    def online(self, jid: str) -> "SimConnection | None":
        return self._online.get(jid)


class SimGroups(Groups):
    """One simulated session's groups."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "SimConnection") -> None:
        self._conn = conn

    @property
    def _dir(self) -> GroupDirectory:
        return self._conn.net.groups

    def _me(self) -> "SimIdentity":
        self._conn.check_online()
        identity = self._conn.identity
        assert identity is not None  # online implies paired
        return identity

    def _member_of(self, jid: str) -> tuple[str, SimGroup]:
        me = self._me().jid
        group = self._dir.get(jid)
        if group is None or me not in group.roles:
            raise GroupNotFound(f"{jid} is not a group this account is in")
        return me, group

    @staticmethod
    def _need_admin(group: SimGroup, me: str, permission: str) -> None:
        if not group.is_admin(me):
            raise NotGroupAdmin(permission, f"only admins of {group.jid} may {permission.replace('_', ' ')}")

    def _joined(self, group: SimGroup, jids: list[str], by: str | None) -> None:
        """Tell the newcomers they joined and everyone else who came."""
        view = self._dir.view(group)
        self._dir.tell(jids, GroupJoinedData(group=view, by=by))
        others = [j for j in group.roles if j not in jids]
        self._dir.tell(
            others,
            GroupParticipantsData(group=group.jid, action=ParticipantAction.ADD, participants=jids, by=by),
        )

    async def create(
        self, subject: str, participants: list[str], description: str | None
    ) -> tuple[Group, list[ParticipantResult]]:
        me = self._me().jid
        group = self._dir.new(subject, description or "", me)
        results = self._add(group, [user_jid(p) for p in participants])
        added = [r.jid for r in results if r.ok]
        self._dir.tell([me], GroupJoinedData(group=self._dir.view(group), by=None))
        self._dir.tell(added, GroupJoinedData(group=self._dir.view(group), by=me))
        return self._dir.view(group), results

    def _add(self, group: SimGroup, jids: list[str]) -> list[ParticipantResult]:
        results = []
        for jid in dict.fromkeys(jids):
            number = jid.split("@", 1)[0]
            if number.startswith(NOT_ON_WHATSAPP_PREFIX):
                results.append(ParticipantResult(jid=jid, ok=False, reason="not_on_whatsapp"))
            elif number.startswith(PRIVACY_PREFIX):
                results.append(ParticipantResult(jid=jid, ok=False, reason="privacy"))
            elif jid in group.roles:
                results.append(ParticipantResult(jid=jid, ok=False, reason="already_a_participant"))
            else:
                group.roles[jid] = Role.MEMBER
                group.requests.pop(jid, None)
                results.append(ParticipantResult(jid=jid, ok=True))
        return results

    async def joined(self) -> list[Group]:
        me = self._me().jid
        return [self._dir.view(g) for g in self._dir.of_member(me)]

    async def info(self, group: str) -> Group:
        return self._dir.view(self._member_of(group)[1])

    async def update(self, change: UpdateGroup) -> Group:
        me, group = self._member_of(change.group)
        settings = {
            k: v
            for k, v in (
                ("announce", change.announce),
                ("locked", change.locked),
                ("join_approval", change.join_approval),
            )
            if v is not None
        }
        if settings:
            self._need_admin(group, me, "change_settings")
        if (change.subject is not None or change.description is not None) and group.settings.locked:
            self._need_admin(group, me, "edit_group_info")
        if change.subject is not None:
            group.subject = change.subject
        if change.description is not None:
            group.description = change.description
        if settings:
            group.settings = group.settings.model_copy(update=settings)
        self._dir.tell(
            group.roles,
            GroupUpdatedData(
                group=group.jid,
                by=me,
                subject=change.subject,
                description=change.description,
                settings=group.settings if settings else None,
            ),
        )
        return self._dir.view(group)

    async def set_picture(self, group: str, jpeg: bytes | None) -> str | None:
        me, g = self._member_of(group)
        if g.settings.locked:
            self._need_admin(g, me, "edit_group_info")
        g.picture_id = secrets.token_hex(8) if jpeg is not None else None
        change = GroupUpdatedData(group=g.jid, by=me, picture_id=g.picture_id, picture_removed=jpeg is None)
        self._dir.tell(g.roles, change)
        return g.picture_id

    async def participants(
        self, group: str, action: ParticipantAction, jids: list[str]
    ) -> list[ParticipantResult]:
        me, g = self._member_of(group)
        self._need_admin(g, me, f"{action.value}_participants")
        targets = [user_jid(j) for j in jids]
        if action is ParticipantAction.ADD:
            results = self._add(g, targets)
            self._joined(g, [r.jid for r in results if r.ok], me)
            return results
        results = []
        for jid in dict.fromkeys(targets):
            role = g.roles.get(jid)
            if role is None:
                results.append(ParticipantResult(jid=jid, ok=False, reason="not_a_participant"))
            elif role is Role.SUPERADMIN and g.roles[me] is not Role.SUPERADMIN:
                results.append(ParticipantResult(jid=jid, ok=False, reason="not_allowed_for_the_creator"))
            else:
                results.append(ParticipantResult(jid=jid, ok=True))
        done = [r.jid for r in results if r.ok]
        if not done:
            return results
        if action is ParticipantAction.REMOVE:
            for jid in done:
                del g.roles[jid]
            self._dir.tell(done, GroupLeftData(group=g.jid, by=me))
        else:
            for jid in done:
                g.roles[jid] = Role.ADMIN if action is ParticipantAction.PROMOTE else Role.MEMBER
        change = GroupParticipantsData(group=g.jid, action=action, participants=done, by=me)
        self._dir.tell(g.roles, change)
        return results

    async def invite_link(self, group: str, revoke: bool) -> str:
        me, g = self._member_of(group)
        self._need_admin(g, me, "manage_invite_link")
        if revoke:
            g.invite = secrets.token_urlsafe(16)
        return INVITE_BASE + g.invite

    async def join(self, code: str) -> tuple[str, bool]:
        me = self._me()
        group = self._dir.by_invite(invite_code(code))
        if group is None:
            raise GroupNotFound("the invite link is void or unknown")
        if me.jid in group.roles:
            return group.jid, False
        if group.settings.join_approval:
            group.requests.setdefault(me.jid, datetime.now(UTC))
            admins = [j for j in group.roles if group.is_admin(j)]
            self._dir.tell(admins, GroupJoinRequestData(group=group.jid, jid=me.jid, lid=me.lid))
            return group.jid, True
        group.roles[me.jid] = Role.MEMBER
        self._joined(group, [me.jid], None)
        return group.jid, False

    async def leave(self, group: str) -> None:
        me, g = self._member_of(group)
        del g.roles[me]
        self._dir.tell([me], GroupLeftData(group=g.jid, by=me))
        change = GroupParticipantsData(group=g.jid, action=ParticipantAction.REMOVE, participants=[me], by=me)
        self._dir.tell(g.roles, change)

    async def join_requests(self, group: str) -> list[JoinRequest]:
        me, g = self._member_of(group)
        self._need_admin(g, me, "manage_join_requests")
        return [JoinRequest(jid=j, lid=self._dir.lid(j), requested_at=t) for j, t in g.requests.items()]

    async def answer_requests(
        self, group: str, action: RequestAction, jids: list[str]
    ) -> list[ParticipantResult]:
        me, g = self._member_of(group)
        self._need_admin(g, me, "manage_join_requests")
        results, approved = [], []
        for jid in dict.fromkeys(user_jid(j) for j in jids):
            if g.requests.pop(jid, None) is None:
                results.append(ParticipantResult(jid=jid, ok=False, reason="no_request"))
                continue
            results.append(ParticipantResult(jid=jid, ok=True))
            if action is RequestAction.APPROVE:
                g.roles[jid] = Role.MEMBER
                approved.append(jid)
        if approved:
            self._joined(g, approved, me)
        return results

    def members(self, group: str) -> tuple[SimGroup, str]:
        """For a send to `group`: the group and the sender, when the sender may send there."""
        me, g = self._member_of(group)
        if g.settings.announce:
            self._need_admin(g, me, "send_messages")
        return g, me
