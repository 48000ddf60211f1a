"""One simulated session's link: QR codes, pairing (by itself or by code), going on and off line,
drops with reconnects, logout and close."""

import asyncio
import base64
import random
import secrets
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from zaphub_contracts.content import TextContent
from zaphub_contracts.host import FaultKind, InjectFault, Simulate
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    Connection,
    ConnectionEvents,
    Identity,
    InboundMessage,
    LoggedOut,
    NotConnected,
)
from zaphub_session_host.transport.sim.contacts import SimContacts
from zaphub_session_host.transport.sim.faults import SessionFaults
from zaphub_session_host.transport.sim.groups import SimGroups
from zaphub_session_host.transport.sim.messages import SimMessages
from zaphub_session_host.transport.sim.presence import SimPresence
from zaphub_session_host.transport.sim.simulate import simulate

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.network import SimTransport

QR_LIFETIME = 20.0
RESUME_DELAY = 0.05
MAX_RECONNECT_DELAY = 30.0
INBOUND_INTERVAL = 0.05  # seconds between the messages of an `inbound` fault
INBOUND_CONTACT = "5511900000001@s.whatsapp.net"
PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


class SimIdentity(BaseModel):
    """The simulator's auth_data: who the simulated linked device is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    transport: str = "sim"
    jid: str
    lid: str
    push_name: str
    paired_at: datetime


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def new_qr() -> str:
    """A random string shaped like WhatsApp's QR payload: ref, noise key, identity key, adv secret."""
    ref = "2@" + base64.b64encode(secrets.token_bytes(60)).decode().rstrip("=")
    return ",".join((ref, _b64(32), _b64(32), _b64(32)))


def new_identity(rng: random.Random, phone: str | None) -> SimIdentity:
    """A random linked device (with `pair_code`, on the given phone)."""
    digits = phone or "55119" + "".join(rng.choice("0123456789") for _ in range(8))
    lid = str(rng.randrange(10**14, 10**15))
    return SimIdentity(
        jid=f"{digits}@s.whatsapp.net",
        lid=f"{lid}@lid",
        push_name=f"Sim {digits[-4:]}",
        paired_at=datetime.now(UTC),
    )


class SimConnection(Connection):
    """One simulated session's link to the network of its process."""

    messages: SimMessages
    groups: SimGroups
    contacts: SimContacts
    presence: SimPresence

    __slots__ = (
        "_closed",
        "_drops",
        "_identity",
        "_inbound_timer",
        "_last_online",
        "_link_timer",
        "_logged_out",
        "_online",
        "_pair_timer",
        "_qr_timer",
        "contacts",
        "events",
        "faults",
        "groups",
        "messages",
        "net",
        "presence",
        "session_id",
    )

    def __init__(
        self, net: "SimTransport", session_id: UUID, identity: SimIdentity | None, events: ConnectionEvents
    ) -> None:
        self.net = net
        self.session_id = session_id
        self._identity = identity
        self.events = events
        self._online = False
        self._closed = False
        self._logged_out = False
        self._qr_timer: asyncio.TimerHandle | None = None
        self._pair_timer: asyncio.TimerHandle | None = None
        self._link_timer: asyncio.TimerHandle | None = None
        self._inbound_timer: asyncio.TimerHandle | None = None
        self.faults = SessionFaults(net.faults, net.rng)
        self._drops = 0
        self._last_online = 0.0
        self.messages = SimMessages(self)
        self.groups = SimGroups(self)
        self.contacts = SimContacts(self)
        self.presence = SimPresence(self)

    @staticmethod
    def _loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def later(self, delay: float, fn: Callable[..., None], *args: object) -> asyncio.TimerHandle:
        return self._loop().call_later(delay, fn, *args)

    def _cancel_timers(self) -> None:
        for timer in (self._qr_timer, self._pair_timer, self._link_timer, self._inbound_timer):
            if timer is not None:
                timer.cancel()
        self._qr_timer = self._pair_timer = self._link_timer = self._inbound_timer = None

    async def connect(self) -> None:
        self._closed = False
        if self._identity is not None:
            self._link_timer = self.later(RESUME_DELAY, self._go_online)
            return
        self._show_qr()
        if self.net.autopair:
            self._pair_timer = self.later(self.net.pair_delay, self._pair, None)

    def auth_data(self) -> bytes | None:
        return self._identity.model_dump_json().encode() if self._identity else None

    @property
    def identity(self) -> SimIdentity | None:
        return self._identity

    def _pump_inbound(self) -> None:
        """Hand the session the next message of its `inbound` faults, while it is online; offline, the
        network keeps them (as WhatsApp keeps what a client has not taken) until it connects again."""
        self._inbound_timer = None
        waiting = self.net.undelivered.get(self.session_id)
        if not waiting or not self.online:
            return
        whatsapp_id, n = waiting.popleft()
        if not waiting:
            del self.net.undelivered[self.session_id]
        self._inbound(whatsapp_id, n)
        if waiting:
            self._inbound_timer = self.later(INBOUND_INTERVAL, self._pump_inbound)

    def _inbound(self, whatsapp_id: str, n: int) -> None:
        """One message of an `inbound` fault: what a contact's phone would send this session."""
        message = InboundMessage(
            whatsapp_id=whatsapp_id,
            chat=INBOUND_CONTACT,
            sender=INBOUND_CONTACT,
            push_name="Simulated contact",
            sent_at=datetime.now(UTC),
            content=TextContent(text=f"inbound {n}"),
        )
        self.messages.receive(message)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def online(self) -> bool:
        return self._online and not self._closed

    def check_online(self) -> None:
        """Raise the named error when nothing can be sent right now."""
        if self._logged_out:
            raise LoggedOut("the session was logged out")
        if self._closed or not self._online:
            raise NotConnected("the session is not connected")

    def _show_qr(self) -> None:
        if self._closed or self._identity is not None:
            return
        self.events.on_qr(new_qr(), datetime.now(UTC) + timedelta(seconds=QR_LIFETIME))
        self._qr_timer = self.later(QR_LIFETIME, self._show_qr)

    def _pair(self, phone: str | None) -> None:
        if self._closed or self._identity is not None:
            return
        self._cancel_timers()
        self._identity = new_identity(self.net.rng, phone)
        self._logged_out = False
        self.events.on_auth_changed(self.auth_data())
        self._go_online()

    def _go_online(self) -> None:
        self._link_timer = None
        if self._closed or self._identity is None or self._online:
            return
        wait = self.faults.banned_until - self._loop().time()
        if wait > 0:
            self._link_timer = self.later(wait, self._go_online)
            return
        now = self._loop().time()
        if now - self._last_online > 60:
            self._drops = 0
        self._online = True
        self._last_online = now
        self.net.online[self._identity.jid] = self
        if self.net.wire is not None:
            me = self._identity
            self.net.wire.join(str(self.session_id), me.jid, me.lid, self.messages.take)
        self.events.on_connected(
            Identity(jid=self._identity.jid, lid=self._identity.lid, push_name=self._identity.push_name)
        )
        if self.session_id in self.net.undelivered and self._inbound_timer is None:
            self._inbound_timer = self.later(INBOUND_INTERVAL, self._pump_inbound)  # what waited meanwhile
        if self.net.faults.drop_every > 0:
            delay = self.net.rng.expovariate(1 / self.net.faults.drop_every)
            self._link_timer = self.later(delay, self._drop, "connection dropped (simulated)", None)

    def _go_offline(self) -> None:
        was_online, self._online = self._online, False
        if self._identity is not None and self.net.online.get(self._identity.jid) is self:
            del self.net.online[self._identity.jid]
        if was_online and self._identity is not None and self.net.wire is not None:
            self.net.wire.leave(self._identity.jid, self.messages.take)

    def _drop(self, reason: str, reconnect_after: float | None) -> None:
        if self._closed or not self._online:
            return
        if self._link_timer is not None:
            self._link_timer.cancel()
        self._go_offline()
        if reconnect_after is None:
            reconnect_after = min(MAX_RECONNECT_DELAY, 0.5 * 2**self._drops)
            self._drops += 1
        self.events.on_disconnected(reason, True)
        self._link_timer = self.later(reconnect_after, self._go_online)

    async def pair_phone(self, phone: str) -> str:
        if self._identity is not None:
            raise AlreadyPaired("the session is already paired")
        if self._pair_timer is not None:
            self._pair_timer.cancel()
        self._pair_timer = self.later(self.net.pair_delay, self._pair, phone)
        code = "".join(self.net.rng.choice(PAIR_CODE_ALPHABET) for _ in range(8))
        return f"{code[:4]}-{code[4:]}"

    async def logout(self) -> None:
        self._cancel_timers()
        self._go_offline()
        if self._identity is not None and self.net.wire is not None:
            self.net.wire.forget(self._identity.jid)
        self._identity = None
        self._logged_out = True
        self.events.on_auth_changed(None)
        self.events.on_logged_out("logged out by request")

    async def close(self) -> None:
        self._closed = True
        self._cancel_timers()
        self._go_offline()

    async def simulate(self, request: Simulate) -> str | None:
        return await simulate(self, request)

    async def inject_fault(self, fault: InjectFault) -> None:
        if fault.kind is FaultKind.INBOUND:
            tag = secrets.token_hex(4).upper()
            waiting = self.net.undelivered.setdefault(self.session_id, deque())
            waiting.extend((f"SIMIN{tag}{i:06d}", i) for i in range(fault.count))
            if self._inbound_timer is None:
                self._inbound_timer = self.later(fault.seconds, self._pump_inbound)
            return
        drop = self.faults.inject(fault, self._loop().time())
        if drop is not None:
            self._drop(drop.reason, drop.reconnect_after)
