"""Contacts through neonize: `is_on_whatsapp`, the contact store, `get_user_info`,
`get_profile_picture`, `get_lid_from_pn`, and `get_blocklist`/`update_blocklist`.

The mappings from neonize's protobufs (`check_results`, `contact_from`, `blocked_jids`) are pure, so
they are tested on real neonize types without a connection.
"""

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from neonize.exc import GetJIDFromStoreError, GetProfilePictureError, NeonizeError
from neonize.proto.Neonize_pb2 import (
    JID,
    Blocklist,
    ContactInfo,
    IsOnWhatsAppResponse,
    ProfilePictureInfo,
    UserInfo,
)
from neonize.utils.enum import BlocklistAction

from zaphub_contracts.host import Contact, ContactCheck
from zaphub_session_host.transport.base import Contacts
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import LID_SERVER, USER_SERVER, jid_str, parse_jid

if TYPE_CHECKING:
    from zaphub_session_host.transport.neonize.connection import NeonizeConnection

_ERRORS = NeonizeError  # each call raises its own subclass (IsOnWhatsAppError, GetBlocklistError, ...)


def check_results(numbers: Sequence[str], answers: Iterable[IsOnWhatsAppResponse]) -> list[ContactCheck]:
    """One result per number asked (E.164 digits), in order; WhatsApp answers by the `+number` query."""
    by_query = {a.Query.lstrip("+"): a for a in answers}
    results = []
    for number in numbers:
        answer = by_query.get(number)
        jid = jid_str(answer.JID) if answer is not None and answer.IsIn else None
        results.append(ContactCheck(number=number, on_whatsapp=jid is not None, jid=jid))
    return results


def contact_from(
    jid: JID,
    info: ContactInfo | None = None,
    user: UserInfo | None = None,
    picture: ProfilePictureInfo | None = None,
    lid: JID | None = None,
) -> Contact:
    """A contact from what the store, the user info query and the picture query said of it."""
    name = push_name = business_name = None
    if info is not None and info.Found:
        name = info.FullName or info.FirstName or info.PushName or None
        push_name = info.PushName or None
        business_name = info.BusinessName or None
    verified = user.VerifiedName.Details.verifiedName if user is not None else ""
    return Contact(
        jid=jid_str(jid) or "",
        lid=jid_str(lid) if lid is not None and lid.Server == LID_SERVER else None,
        name=name or business_name or verified or None,
        push_name=push_name,
        about=(user.Status or None) if user is not None else None,
        business=bool(business_name or verified),
        business_name=business_name or verified or None,
        picture_url=(picture.URL or None) if picture is not None else None,
    )


def blocked_jids(blocklist: Blocklist) -> list[str]:
    return [j for j in (jid_str(jid) for jid in blocklist.JIDs) if j]


class NeonizeContacts(Contacts):
    __slots__ = ("_conn",)

    def __init__(self, conn: "NeonizeConnection") -> None:
        self._conn = conn

    async def check(self, numbers: list[str]) -> list[ContactCheck]:
        self._conn.check_online()
        try:
            answers = await self._conn.client.is_on_whatsapp(*(f"+{n}" for n in numbers))
        except _ERRORS as exc:
            raise map_send_error(str(exc)) from exc
        return check_results(numbers, answers)

    async def known(self) -> list[Contact]:
        self._conn.check_online()
        try:
            contacts = await self._conn.client.contact.get_all_contacts()
        except _ERRORS as exc:
            raise map_send_error(str(exc)) from exc
        return [contact_from(c.JID, c.Info) for c in contacts if c.JID.Server == USER_SERVER]

    async def info(self, jid: str) -> Contact:
        self._conn.check_online()
        client = self._conn.client
        target = parse_jid(jid)
        lid: JID | None = None
        try:
            if target.Server == LID_SERVER:
                lid, target = target, await client.get_pn_from_lid(target)
            else:
                lid = await client.get_lid_from_pn(target)
        except GetJIDFromStoreError:
            pass  # no mapping stored yet: the profile without the other address
        try:
            users = await client.get_user_info(target)
            stored = await client.contact.get_contact(target)
        except _ERRORS as exc:
            raise map_send_error(str(exc)) from exc
        user = next((u.UserInfo for u in users if u.JID.User == target.User), None)
        try:
            picture: ProfilePictureInfo | None = await client.get_profile_picture(target)
        except GetProfilePictureError:
            picture = None  # no picture, or hidden by the contact's privacy settings
        return contact_from(target, stored, user, picture, lid)

    async def blocklist(self) -> list[str]:
        self._conn.check_online()
        try:
            return blocked_jids(await self._conn.client.get_blocklist())
        except _ERRORS as exc:
            raise map_send_error(str(exc)) from exc

    async def set_blocked(self, jid: str, blocked: bool) -> list[str]:
        self._conn.check_online()
        action = BlocklistAction.BLOCK if blocked else BlocklistAction.UNBLOCK
        try:
            return blocked_jids(await self._conn.client.update_blocklist(parse_jid(jid), action))
        except _ERRORS as exc:
            raise map_send_error(str(exc)) from exc
