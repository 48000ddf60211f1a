"""The simulated network between session-host processes, over NATS.

Every linked simulated session registers its number (the digits of its JID) in the
`zaphub_sim_numbers` bucket. A frame to a registered number is published to the `ZAPHUB_SIM` stream
(`zaphub.v1.sim.<number>.<kind>`, a work queue kept seven days), where it waits, as on WhatsApp's
servers, until that session is online somewhere: each online session takes its own frames through a
durable consumer named after its number, so a session that goes off line, or moves to another host,
resumes where it stopped. Logout unregisters the number and deletes what was pending for it.

A number nobody registered is a simulated contact of the outside world (messages.py answers for it).

Typing in a chat is a frame to the chat's number like a message (so it arrives in order with the
messages), dropped on arrival when older than `PRESENCE_TTL`: a session coming back on line does not
see a contact typing minutes ago. Availability is for every account at once and is not kept: one
`presence` frame on `zaphub.v1.simpresence` (core NATS, not the stream) reaches every host process,
and each gives it to its sessions online then, as WhatsApp shows presence to who is looking. One
publish per change, however many numbers are linked: presence is not rate limited.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.js import api as js_api
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from zaphub_contracts import subjects
from zaphub_contracts.content import MessageContent
from zaphub_contracts.streams import SIM, SIM_NUMBERS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.kv_watch import KvMirror
from zaphub_session_host.transport.base import ReceiptKind

log = logging.getLogger(__name__)

FrameKind = Literal["message", "receipt", "group", "typing", "presence"]
PRESENCE_TTL = 30.0  # seconds a typing frame stays worth showing


class SimNumber(BaseModel):
    """Who holds a number of the simulated network."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: str
    jid: str
    lid: str | None = None


class SimFrame(BaseModel):
    """One thing one simulated account sends another: a message, a receipt for one, a group change,
    typing in their chat; or its availability, to everyone."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: FrameKind
    whatsapp_id: str
    sender: str  # phone JID
    sender_lid: str | None = None
    push_name: str | None = None
    at: datetime
    content: MessageContent | None = None  # message
    media_base64: str | None = None  # message: the bytes of its media, when the sender had them
    receipt: ReceiptKind | None = None  # receipt
    chat: str | None = None  # message: the group it was sent to (None: to the recipient itself)
    group_event: str | None = None  # group: the `group.*` event it becomes at the recipient
    group_data: dict[str, Any] | None = None  # group: that event's data
    chat_state: str | None = None  # typing: composing, recording or paused
    available: bool | None = None  # presence


def number_of(jid: str) -> str:
    """The account's number (E.164 digits), from a JID or `+55…`: the subject token of its frames."""
    user = jid.split("@", 1)[0].split(":", 1)[0]
    return user.lstrip("+")


def _consumer(number: str) -> str:
    return f"sim_{number}"


Deliver = Callable[[SimFrame], bool]  # False: not taken now (the session is going away), redeliver
OnPresence = Callable[[SimFrame], None]


class NatsWire:
    """This process's end of the simulated network."""

    def __init__(self, bus: Bus, numbers_kv: KeyValue, numbers: KvMirror[SimNumber]) -> None:
        self._bus = bus
        self._presence_sub: Any = None
        self._kv = numbers_kv
        self._numbers = numbers
        self._subs: dict[str, Any] = {}  # number -> push subscription of the session online here
        self._takers: dict[str, Deliver] = {}  # number -> the connection online here under it
        self._chains: dict[str, asyncio.Task[None]] = {}  # number -> last join/leave, run in order
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, bus: Bus, on_presence: OnPresence) -> "NatsWire":
        """Join the network; `on_presence` gets every account's availability (this process's too)."""
        await bus.ensure_stream(SIM)
        kv = await bus.kv(SIM_NUMBERS_BUCKET)
        mirror: KvMirror[SimNumber] = KvMirror(kv, SimNumber, name="sim-numbers")
        await mirror.start()
        wire = cls(bus, kv, mirror)

        async def on_msg(msg: Msg) -> None:
            try:
                frame = SimFrame.model_validate_json(msg.data)
            except ValueError:
                log.warning("simulated network: unreadable presence frame dropped")
                return
            on_presence(frame)

        wire._presence_sub = await bus.nc.subscribe(subjects.SIM_PRESENCE, cb=on_msg)
        return wire

    async def close(self) -> None:
        if self._presence_sub is not None:
            with contextlib.suppress(Exception):
                await self._presence_sub.unsubscribe()
            self._presence_sub = None
        for task in list(self._chains.values()):
            with contextlib.suppress(Exception):
                await task
        for sub in list(self._subs.values()):
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        with contextlib.suppress(Exception):
            await self._numbers.stop()

    def lid_of(self, jid: str) -> str | None:
        """The LID of a linked number, when its session told the network."""
        entry = self._numbers.get(number_of(jid))
        return entry.lid if entry is not None else None

    def is_linked(self, jid: str) -> bool:
        """Whether `jid` is the number of a simulated session (online or not)."""
        return self._numbers.get(number_of(jid)) is not None

    # Joining and leaving run as tasks in order per number: the connection's callbacks are plain calls.
    def _then(self, number: str, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        previous = self._chains.get(number)

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            try:
                await step()
            except Exception:
                log.exception("simulated network: %s of %s failed", step.__name__, number)

        task = asyncio.get_running_loop().create_task(run())
        self._chains[number] = task
        task.add_done_callback(lambda t: self._forget_chain(number, t))

    def _forget_chain(self, number: str, task: asyncio.Task[None]) -> None:
        if self._chains.get(number) is task:
            del self._chains[number]

    def join(self, session_id: str, jid: str, lid: str | None, deliver: Deliver) -> None:
        """The session holding `jid` is online here: register it and take its frames."""
        number = number_of(jid)
        self._takers[number] = deliver

        async def join() -> None:
            entry = SimNumber(session_id=session_id, jid=jid, lid=lid)
            if self._numbers.get(number) != entry:
                await self._kv.put(number, entry.model_dump_json().encode())
            if number in self._subs:
                return

            async def on_frame(msg: Msg) -> None:
                try:
                    frame = SimFrame.model_validate_json(msg.data)
                except ValueError:
                    log.warning("simulated network: unreadable frame on %s dropped", msg.subject)
                else:
                    taker = self._takers.get(number)
                    if taker is None or not taker(frame):
                        await msg.nak(delay=0.5)
                        return
                await msg.ack()

            config = js_api.ConsumerConfig(
                ack_policy=js_api.AckPolicy.EXPLICIT, ack_wait=30.0, deliver_policy=js_api.DeliverPolicy.ALL
            )
            durable = _consumer(number)
            self._subs[number] = await self._bus.js.subscribe(
                subjects.sim_inbox(number),
                durable=durable,
                queue=durable,  # a deliver group: a session moving between hosts may be bound twice
                stream=SIM.name,
                cb=on_frame,
                manual_ack=True,
                config=config,
            )

        self._then(number, join)

    def leave(self, jid: str, deliver: Deliver) -> None:
        """The session holding `jid` went off line here; what is sent to it waits in the stream."""
        number = number_of(jid)
        if self._takers.get(number) != deliver:
            return  # another connection of this process holds the number now
        del self._takers[number]

        async def leave() -> None:
            sub = self._subs.pop(number, None)
            if sub is not None:
                await sub.unsubscribe()  # the durable consumer stays, holding what arrives meanwhile

        self._then(number, leave)

    def forget(self, jid: str) -> None:
        """The session holding `jid` logged out: the number is no longer linked; its pending frames go."""
        number = number_of(jid)
        self._takers.pop(number, None)

        async def forget() -> None:
            sub = self._subs.pop(number, None)
            if sub is not None:
                await sub.unsubscribe()
            await self._kv.delete(number)
            with contextlib.suppress(NotFoundError):
                await self._bus.js.delete_consumer(SIM.name, _consumer(number))
            await self._bus.js.purge_stream(SIM.name, subject=subjects.sim_inbox(number))

        self._then(number, forget)

    def announce(self, frame: SimFrame) -> None:
        """Tell every host process `frame` (a `presence`); whoever is not on line misses it."""

        async def publish() -> None:
            try:
                # Core NATS, not JetStream: a presence is for whoever listens now, never kept.
                await self._bus.nc.publish(subjects.SIM_PRESENCE, frame.model_dump_json().encode())
            except Exception:
                log.exception("simulated network: a presence frame of %s was lost", frame.sender)

        task = asyncio.get_running_loop().create_task(publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, to: str, frame: SimFrame) -> None:
        """Hand `frame` to the network for the number of `to`; it waits there until taken."""
        subject = subjects.sim(number_of(to), frame.kind)
        msg_id = f"{frame.whatsapp_id}/{frame.kind}/{frame.receipt or ''}/{number_of(to)}"

        async def publish() -> None:
            try:
                await self._bus.publish(subject, frame, msg_id)
            except Exception:
                log.exception("simulated network: a %s frame to %s was lost", frame.kind, to)

        task = asyncio.get_running_loop().create_task(publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
