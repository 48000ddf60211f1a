"""Groups in the simulator: the groups of the simulated network (`GroupDirectory`, one per process,
over a store all host processes share: the `zaphub_sim_groups` bucket once the host is on NATS) and
one session's view of them (`SimGroups`), with WhatsApp's admin rules.

- Creating makes the account superadmin. Numbers starting `999` are not on WhatsApp and numbers
  starting `998` only accept invitations (privacy): both are refused with that reason.
- Admins add, remove, promote and demote; nobody but the superadmin demotes or removes it.
- `announce`: only admins send. `locked`: only admins change subject, description and picture.
  The settings themselves, invite links and join requests are for admins.
- `join_approval`: joining by link makes a join request the admins answer.
- Every change reaches every member as its `group.*` event, over the network (a `group` frame of
  wire.py, waiting while the member is off line); a message to the group reaches every member but
  the sender (messages.py).
"""

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

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
    TransientSendError,
)
from zaphub_session_host.transport.sim.wire import SimFrame

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection
    from zaphub_session_host.transport.sim.network import SimTransport

NOT_ON_WHATSAPP_PREFIX = "999"
PRIVACY_PREFIX = "998"
INVITE_BASE = "https://chat.whatsapp.com/"


def user_jid(value: str) -> str:
    """A participant as the network knows it: a phone-number JID."""
    return value if "@" in value else f"{value.lstrip('+')}@s.whatsapp.net"


def invite_code(value: str) -> str:
    """The code of an invite link, or the code itself."""
    return value.strip().removeprefix(INVITE_BASE).strip("/")


class SimGroup(BaseModel):
    """A group as the network keeps it."""

    jid: str
    subject: str
    description: str
    owner: str
    created_at: datetime
    roles: dict[str, Role] = Field(default_factory=dict)  # member JID -> role, in joining order
    settings: GroupSettings = Field(default_factory=GroupSettings)
    picture_id: str | None = None
    invite: str = Field(default_factory=lambda: secrets.token_urlsafe(16))
    requests: dict[str, datetime] = Field(default_factory=dict)  # asking JID -> since

    def is_admin(self, jid: str) -> bool:
        return self.roles.get(jid, Role.MEMBER) in (Role.ADMIN, Role.SUPERADMIN)


T = TypeVar("T")
Apply = Callable[[SimGroup], T]
Build = Callable[[SimGroup], object]
MAX_ATTEMPTS = 8


class GroupStore(Protocol):
    """Where the network keeps its groups: compare-and-set on a revision, so two hosts changing one
    group at once do not lose a change."""

    async def get(self, jid: str) -> tuple[SimGroup, int] | None: ...

    async def put(self, group: SimGroup, revision: int | None) -> bool:
        """Write `group` if it is still at `revision` (None: new); False when it moved on."""

    async def all(self) -> list[SimGroup]: ...


class MemoryGroups:
    """The groups of a network confined to this process (no NATS: unit tests)."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[str, int]] = {}

    async def get(self, jid: str) -> tuple[SimGroup, int] | None:
        found = self._groups.get(jid)
        return (SimGroup.model_validate_json(found[0]), found[1]) if found else None

    async def put(self, group: SimGroup, revision: int | None) -> bool:
        current = self._groups.get(group.jid)
        if (current[1] if current else None) != revision:
            return False
        self._groups[group.jid] = (group.model_dump_json(), (revision or 0) + 1)
        return True

    async def all(self) -> list[SimGroup]:
        return [SimGroup.model_validate_json(v) for v, _ in self._groups.values()]


class KvGroups:
    """The groups of the network across host processes, one key per group (its number) in a bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @staticmethod
    def _key(jid: str) -> str:
        return jid.split("@", 1)[0]

    async def get(self, jid: str) -> tuple[SimGroup, int] | None:
        try:
            entry = await self._kv.get(self._key(jid))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return SimGroup.model_validate_json(entry.value), entry.revision

    async def put(self, group: SimGroup, revision: int | None) -> bool:
        value = group.model_dump_json().encode()
        try:
            if revision is None:
                await self._kv.create(self._key(group.jid), value)
            else:
                await self._kv.update(self._key(group.jid), value, last=revision)
        except (KeyWrongLastSequenceError, BadRequestError):
            return False
        return True

    async def all(self) -> list[SimGroup]:
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        found = [await self.get(k) for k in keys]
        return [g for g, _ in (f for f in found if f is not None)]


CHANGE_EVENTS: dict[type[BaseModel], str] = {
    GroupJoinedData: "group.joined",
    GroupLeftData: "group.left",
    GroupUpdatedData: "group.updated",
    GroupParticipantsData: "group.participants",
    GroupJoinRequestData: "group.join_request",
}
CHANGES_BY_EVENT: dict[str, type[BaseModel]] = {v: k for k, v in CHANGE_EVENTS.items()}


def change_from_frame(frame: SimFrame) -> GroupChange | None:
    """The group change a `group` frame of the network carries."""
    cls = CHANGES_BY_EVENT.get(frame.group_event or "")
    if cls is None or frame.group_data is None:
        return None
    change: GroupChange = cls.model_validate(frame.group_data)  # type: ignore[assignment]
    return change


class GroupDirectory:
    """Every group of the simulated network, and the way to its members: over the network (wire.py)
    once the host is on NATS, else to the sessions online in this process."""

    def __init__(self, net: "SimTransport") -> None:
        self._net = net
        self.store: GroupStore = MemoryGroups()

    async def new(self, subject: str, description: str, owner: str, build: Build) -> SimGroup:
        for _ in range(5):
            jid = f"120363{secrets.randbelow(10**12):012d}@g.us"
            group = SimGroup(
                jid=jid,
                subject=subject,
                description=description,
                owner=owner,
                created_at=datetime.now(UTC),
                roles={owner: Role.SUPERADMIN},
            )
            build(group)
            if await self.store.put(group, None):
                return group
        raise TransientSendError("could not allocate a group JID")

    async def change(self, jid: str, apply: Apply[T]) -> tuple[SimGroup, T]:
        """Apply `apply` to the group and store it; `apply` raises to refuse, and runs again when
        another host changed the group meanwhile."""
        for _ in range(MAX_ATTEMPTS):
            found = await self.store.get(jid)
            if found is None:
                raise GroupNotFound(f"{jid} is not a group this account is in")
            group, revision = found
            result = apply(group)
            if await self.store.put(group, revision):
                return group, result
        raise TransientSendError(f"{jid} changed too often at once; retry")

    async def get(self, jid: str) -> SimGroup | None:
        found = await self.store.get(jid)
        return found[0] if found else None

    async def by_invite(self, code: str) -> SimGroup | None:
        return next((g for g in await self.store.all() if g.invite == code), None)

    async def of_member(self, jid: str) -> list[SimGroup]:
        return [g for g in await self.store.all() if jid in g.roles]

    def lid(self, jid: str) -> str | None:
        wire = self._net.wire
        if wire is not None:
            return wire.lid_of(jid)
        conn = self._net.online.get(jid)
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

    def tell(self, me: "SimConnection", jids: Iterable[str], change: GroupChange) -> None:
        """Every member in `jids` gets `change` as its event: the sender at once, the others over
        the network (or, without one, when online in this process)."""
        wire = self._net.wire
        identity = me.identity
        for jid in jids:
            if identity is not None and jid == identity.jid:
                if not me.closed:
                    me.events.on_group(change)
            elif wire is not None:
                if wire.is_linked(jid) and identity is not None:
                    frame = SimFrame(
                        kind="group",
                        whatsapp_id=secrets.token_hex(10).upper(),
                        sender=identity.jid,
                        at=datetime.now(UTC),
                        group_event=CHANGE_EVENTS[type(change)],
                        group_data=change.model_dump(mode="json"),
                    )
                    wire.send(jid, frame)
            else:
                conn = self._net.online.get(jid)
                if conn is not None and not conn.closed:
                    conn.events.on_group(change)


class SimGroups(Groups):
    """One simulated session's groups."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "SimConnection") -> None:
        self._conn = conn

    @property
    def _dir(self) -> GroupDirectory:
        return self._conn.net.groups

    def _me(self) -> str:
        self._conn.check_online()
        identity = self._conn.identity
        assert identity is not None  # online implies paired
        return identity.jid

    @staticmethod
    def _member(group: SimGroup, me: str) -> None:
        if me not in group.roles:
            raise GroupNotFound(f"{group.jid} is not a group this account is in")

    @staticmethod
    def _need_admin(group: SimGroup, me: str, permission: str) -> None:
        if not group.is_admin(me):
            raise NotGroupAdmin(permission, f"only admins of {group.jid} may {permission.replace('_', ' ')}")

    def _tell(self, jids: Iterable[str], change: GroupChange) -> None:
        self._dir.tell(self._conn, list(jids), change)

    def _joined(self, group: SimGroup, jids: list[str], by: str | None) -> None:
        """Tell the newcomers they joined, and everyone else who came."""
        if not jids:
            return
        self._tell(jids, GroupJoinedData(group=self._dir.view(group), by=by))
        change = GroupParticipantsData(
            group=group.jid, action=ParticipantAction.ADD, participants=jids, by=by
        )
        self._tell([j for j in group.roles if j not in jids], change)

    async def create(
        self, subject: str, participants: list[str], description: str | None
    ) -> tuple[Group, list[ParticipantResult]]:
        me = self._me()
        results: list[ParticipantResult] = []

        def build(group: SimGroup) -> None:
            results[:] = _add(group, [user_jid(p) for p in participants])

        group = await self._dir.new(subject, description or "", me, build)
        self._tell([me], GroupJoinedData(group=self._dir.view(group), by=None))
        self._tell([r.jid for r in results if r.ok], GroupJoinedData(group=self._dir.view(group), by=me))
        return self._dir.view(group), results

    async def joined(self) -> list[Group]:
        me = self._me()
        return [self._dir.view(g) for g in await self._dir.of_member(me)]

    async def info(self, group: str) -> Group:
        me = self._me()
        found = await self._dir.get(group)
        if found is None or me not in found.roles:
            raise GroupNotFound(f"{group} is not a group this account is in")
        return self._dir.view(found)

    async def update(self, change: UpdateGroup) -> Group:
        me = self._me()
        settings = {
            k: v
            for k, v in (
                ("announce", change.announce),
                ("locked", change.locked),
                ("join_approval", change.join_approval),
            )
            if v is not None
        }

        def apply(group: SimGroup) -> None:
            self._member(group, me)
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

        group, _ = await self._dir.change(change.group, apply)
        updated = GroupUpdatedData(
            group=group.jid,
            by=me,
            subject=change.subject,
            description=change.description,
            settings=group.settings if settings else None,
        )
        self._tell(group.roles, updated)
        return self._dir.view(group)

    async def set_picture(self, group: str, jpeg: bytes | None) -> str | None:
        me = self._me()

        def apply(g: SimGroup) -> None:
            self._member(g, me)
            if g.settings.locked:
                self._need_admin(g, me, "edit_group_info")
            g.picture_id = secrets.token_hex(8) if jpeg is not None else None

        g, _ = await self._dir.change(group, apply)
        change = GroupUpdatedData(group=g.jid, by=me, picture_id=g.picture_id, picture_removed=jpeg is None)
        self._tell(g.roles, change)
        return g.picture_id

    async def participants(
        self, group: str, action: ParticipantAction, jids: list[str]
    ) -> list[ParticipantResult]:
        me = self._me()
        targets = [user_jid(j) for j in jids]
        before: list[str] = []

        def apply(g: SimGroup) -> list[ParticipantResult]:
            self._member(g, me)
            self._need_admin(g, me, f"{action.value}_participants")
            before[:] = list(g.roles)
            if action is ParticipantAction.ADD:
                return _add(g, targets)
            results = []
            for jid in dict.fromkeys(targets):
                role = g.roles.get(jid)
                if role is None:
                    results.append(ParticipantResult(jid=jid, ok=False, reason="not_a_participant"))
                elif role is Role.SUPERADMIN and g.roles[me] is not Role.SUPERADMIN:
                    results.append(ParticipantResult(jid=jid, ok=False, reason="not_allowed_for_the_creator"))
                else:
                    results.append(ParticipantResult(jid=jid, ok=True))
                    if action is ParticipantAction.REMOVE:
                        del g.roles[jid]
                    else:
                        g.roles[jid] = Role.ADMIN if action is ParticipantAction.PROMOTE else Role.MEMBER
            return results

        g, results = await self._dir.change(group, apply)
        done = [r.jid for r in results if r.ok]
        if action is ParticipantAction.ADD:
            self._joined(g, done, me)
        elif done:
            if action is ParticipantAction.REMOVE:
                self._tell(done, GroupLeftData(group=g.jid, by=me))
            change = GroupParticipantsData(group=g.jid, action=action, participants=done, by=me)
            self._tell([j for j in before if j not in done or action is not ParticipantAction.REMOVE], change)
        return results

    async def invite_link(self, group: str, revoke: bool) -> str:
        me = self._me()

        def apply(g: SimGroup) -> None:
            self._member(g, me)
            self._need_admin(g, me, "manage_invite_link")
            if revoke:
                g.invite = secrets.token_urlsafe(16)

        g, _ = await self._dir.change(group, apply)
        return INVITE_BASE + g.invite

    async def join(self, code: str) -> tuple[Group, bool]:
        me = self._me()
        found = await self._dir.by_invite(invite_code(code))
        if found is None:
            raise GroupNotFound("the invite link is void or unknown")

        def apply(g: SimGroup) -> str:
            if g.invite != invite_code(code):
                raise GroupNotFound("the invite link is void or unknown")
            if me in g.roles:
                return "member"
            if g.settings.join_approval:
                g.requests.setdefault(me, datetime.now(UTC))
                return "pending"
            g.roles[me] = Role.MEMBER
            return "joined"

        g, outcome = await self._dir.change(found.jid, apply)
        if outcome == "pending":
            admins = [j for j in g.roles if g.is_admin(j)]
            self._tell(admins, GroupJoinRequestData(group=g.jid, jid=me, lid=self._dir.lid(me)))
        elif outcome == "joined":
            self._joined(g, [me], None)
        # Pending, the group as its link shows it: WhatsApp lets a would-be member see that much.
        return self._dir.view(g), outcome == "pending"

    async def leave(self, group: str) -> None:
        me = self._me()

        def apply(g: SimGroup) -> None:
            self._member(g, me)
            del g.roles[me]

        g, _ = await self._dir.change(group, apply)
        self._tell([me], GroupLeftData(group=g.jid, by=me))
        change = GroupParticipantsData(group=g.jid, action=ParticipantAction.REMOVE, participants=[me], by=me)
        self._tell(g.roles, change)

    async def join_requests(self, group: str) -> list[JoinRequest]:
        me = self._me()
        g = await self._dir.get(group)
        if g is None or me not in g.roles:
            raise GroupNotFound(f"{group} is not a group this account is in")
        self._need_admin(g, me, "manage_join_requests")
        return [JoinRequest(jid=j, lid=self._dir.lid(j), requested_at=t) for j, t in g.requests.items()]

    async def answer_requests(
        self, group: str, action: RequestAction, jids: list[str]
    ) -> list[ParticipantResult]:
        me = self._me()

        def apply(g: SimGroup) -> list[ParticipantResult]:
            self._member(g, me)
            self._need_admin(g, me, "manage_join_requests")
            results = []
            for jid in dict.fromkeys(user_jid(j) for j in jids):
                if g.requests.pop(jid, None) is None:
                    results.append(ParticipantResult(jid=jid, ok=False, reason="no_request"))
                    continue
                results.append(ParticipantResult(jid=jid, ok=True))
                if action is RequestAction.APPROVE:
                    g.roles[jid] = Role.MEMBER
            return results

        g, results = await self._dir.change(group, apply)
        if action is RequestAction.APPROVE:
            self._joined(g, [r.jid for r in results if r.ok], me)
        return results

    async def members(self, group: str) -> tuple[SimGroup, str]:
        """For a send to `group`: the group and the sender, when the sender may send there."""
        me = self._me()
        g = await self._dir.get(group)
        if g is None or me not in g.roles:
            raise GroupNotFound(f"{group} is not a group this account is in")
        if g.settings.announce:
            self._need_admin(g, me, "send_messages")
        return g, me


def _add(group: SimGroup, jids: list[str]) -> list[ParticipantResult]:
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
