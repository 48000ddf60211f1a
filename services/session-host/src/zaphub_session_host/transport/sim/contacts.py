"""Contacts in the simulator: numbers starting with 999 are not on WhatsApp; every other number has an
account whose LID, name, about text, business flag and picture follow from the number alone, so tests
can predict them. The contacts a session knows are the other sessions online in its network."""

import hashlib
from typing import TYPE_CHECKING

from zaphub_contracts.host import Contact, ContactCheck
from zaphub_session_host.transport.base import Contacts, RecipientNotOnWhatsApp

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection

NOT_ON_WHATSAPP_PREFIX = "999"
PICTURE_BASE = "https://pps.sim.zaphub.invalid/v/"


def on_whatsapp(number: str) -> bool:
    return not number.startswith(NOT_ON_WHATSAPP_PREFIX)


def sim_lid(number: str) -> str:
    """A stable 15-digit LID for a number."""
    digest = int.from_bytes(hashlib.sha256(f"lid:{number}".encode()).digest()[:8], "big")
    return f"{10**14 + digest % (9 * 10**14)}@lid"


def sim_contact(number: str, lid: str | None = None, push_name: str | None = None) -> Contact:
    """The profile of `number` (E.164 digits) on the simulated network; `lid` and `push_name` of a
    simulated session when it is one."""
    seed = hashlib.sha256(f"profile:{number}".encode()).digest()
    business = seed[0] % 4 == 0
    name = push_name or f"Sim {number[-4:]}"
    return Contact(
        jid=f"{number}@s.whatsapp.net",
        lid=lid or sim_lid(number),
        name=name,
        push_name=name,
        about=f"Hey there! I am using WhatsApp. #{seed[1]:03d}",
        business=business,
        business_name=f"Sim Store {number[-4:]}" if business else None,
        picture_url=None if seed[2] % 5 == 0 else f"{PICTURE_BASE}{seed[3:11].hex()}.jpg",
    )


class SimContacts(Contacts):
    __slots__ = ("_blocked", "_conn")

    def __init__(self, conn: "SimConnection") -> None:
        self._conn = conn
        self._blocked: list[str] = []

    def _number(self, jid: str) -> str:
        user, _, server = jid.partition("@")
        if server == "lid":
            for peer in self._conn.net.online.values():
                if peer.identity is not None and peer.identity.lid == jid:
                    return peer.identity.jid.split("@", 1)[0]
            raise RecipientNotOnWhatsApp(f"{jid} is not known (simulator)")
        return user.lstrip("+")

    async def check(self, numbers: list[str]) -> list[ContactCheck]:
        self._conn.check_online()
        results = []
        for number in numbers:
            if not on_whatsapp(number):
                results.append(ContactCheck(number=number, on_whatsapp=False))
                continue
            contact = self._profile(number)
            results.append(ContactCheck(number=number, on_whatsapp=True, jid=contact.jid, lid=contact.lid))
        return results

    def _profile(self, number: str) -> Contact:
        peer = self._conn.net.online.get(f"{number}@s.whatsapp.net")
        identity = peer.identity if peer is not None else None
        if identity is not None:
            return sim_contact(number, identity.lid, identity.push_name)
        return sim_contact(number)

    async def known(self) -> list[Contact]:
        self._conn.check_online()
        me = self._conn.identity.jid if self._conn.identity is not None else None
        numbers = sorted(jid.split("@", 1)[0] for jid in self._conn.net.online if jid != me)
        return [self._profile(n).model_copy(update={"about": None, "picture_url": None}) for n in numbers]

    async def info(self, jid: str) -> Contact:
        self._conn.check_online()
        number = self._number(jid)
        if not on_whatsapp(number):
            raise RecipientNotOnWhatsApp(f"+{number} is not on WhatsApp (simulator: numbers starting 999)")
        return self._profile(number)

    async def blocklist(self) -> list[str]:
        self._conn.check_online()
        return list(self._blocked)

    async def set_blocked(self, jid: str, blocked: bool) -> list[str]:
        self._conn.check_online()
        jid = f"{self._number(jid)}@s.whatsapp.net"
        if blocked and jid not in self._blocked:
            self._blocked.append(jid)
        elif not blocked and jid in self._blocked:
            self._blocked.remove(jid)
        return list(self._blocked)

    def blocks(self, jid: str) -> bool:
        return jid in self._blocked
