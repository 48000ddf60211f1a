"""The simulator transport: a WhatsApp stand-in for demos, load tests and client developers.

Same interface and state machine as neonize, no network. What it does:

- A session without a saved identity shows a QR (`2@ref,noise,identity,adv` like WhatsApp's) and a
  new one every 20 s. With `ZAPHUB_SIM_AUTOPAIR` (default on) it pairs by itself after
  `ZAPHUB_SIM_PAIR_DELAY` seconds; otherwise it waits in `qr_pending` until `pair_code` is asked,
  and pairs `ZAPHUB_SIM_PAIR_DELAY` seconds after handing out the code. Pairing creates a random
  identity (`55119<8 digits>@s.whatsapp.net`, a `<15 digits>@lid` LID; with `pair_code`, the given
  phone) which becomes the session's auth_data, so a restart or another host resumes the same JID
  without a QR.
- A send is appended as one JSON line (`message_id`, `whatsapp_id`, `session_id`, `to`, `type`,
  `time`) to `<data_dir>/sim/delivered.jsonl` with a single O_APPEND write, so several host processes
  can share the file. A delivery receipt follows after ~0.5 s and a read receipt after ~1.5 s.
  A recipient that is another simulated session of this process receives the message.
- Recipients whose number starts with `999` are not on WhatsApp: a permanent error.
- Logout forgets the identity (auth_data is deleted) and reports `logged_out`.

Faults, process-wide from `ZAPHUB_SIM_FAULTS`, either a JSON object or `key=value` pairs joined by
commas, e.g. `send_delay=0.2,fail_rate=0.05,drop_every=60`:

| key          | effect                                                                  |
|--------------|-------------------------------------------------------------------------|
| `send_delay` | every send takes this many seconds                                      |
| `fail_rate`  | this fraction of sends fails with a transient transport error           |
| `drop_every` | a connected session drops about this often (seconds, exponential) and reconnects |

Per session, the `fault` host op (`InjectFault`) drops the connection, bans it for a while, slows
its sends, or fails its next N sends; `clear` undoes them.

Timers are `loop.call_later` handles, never a task per session, so one process holds many thousands.
"""

import asyncio
import base64
import json
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from zaphub_contracts.content import MessageContent
from zaphub_contracts.host import FaultKind, InjectFault
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    Connection,
    ConnectionEvents,
    Identity,
    InboundMessage,
    LoggedOut,
    NotConnected,
    Receipt,
    ReceiptKind,
    RecipientNotOnWhatsApp,
    TransientSendError,
    Transport,
)

NOT_ON_WHATSAPP_PREFIX = "999"
QR_LIFETIME = 20.0
RESUME_DELAY = 0.05
DELIVERED_AFTER = 0.5
READ_AFTER = 1.5
MAX_RECONNECT_DELAY = 30.0
PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


class SimFaultSpecError(ValueError):
    """`ZAPHUB_SIM_FAULTS` could not be read."""


@dataclass(frozen=True, slots=True)
class SimFaults:
    send_delay: float = 0.0
    fail_rate: float = 0.0
    drop_every: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "SimFaults":
        spec = spec.strip()
        if not spec:
            return cls()
        raw: dict[str, Any]
        if spec.startswith("{"):
            try:
                raw = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS is not valid JSON: {exc}") from exc
        else:
            raw = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, sep, value = part.partition("=")
                if not sep:
                    raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: {part!r} is not key=value")
                raw[key.strip()] = value.strip()
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: unknown {sorted(unknown)}, known {sorted(known)}")
        try:
            values = {k: float(v) for k, v in raw.items()}
        except (TypeError, ValueError) as exc:
            raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: values must be numbers: {exc}") from exc
        if any(v < 0 for v in values.values()) or values.get("fail_rate", 0.0) > 1:
            raise SimFaultSpecError("ZAPHUB_SIM_FAULTS: values must be >= 0 and fail_rate <= 1")
        return cls(**values)


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


class SimTransport(Transport):
    """The simulated WhatsApp network of this process."""

    name = "sim"

    def __init__(
        self,
        data_dir: Path,
        autopair: bool = True,
        pair_delay: float = 2.0,
        faults: SimFaults | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.log_path = data_dir / "sim" / "delivered.jsonl"
        self.autopair = autopair
        self.pair_delay = pair_delay
        self.faults = faults or SimFaults()
        self.rng = rng or random.Random()
        self.online: dict[str, SimConnection] = {}  # JID -> connected session, for in-process delivery
        self._log_fd: int | None = None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def close(self) -> None:
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> "SimConnection":
        identity = SimIdentity.model_validate_json(auth_data) if auth_data else None
        return SimConnection(self, session_id, identity, events)

    def new_identity(self, phone: str | None) -> SimIdentity:
        digits = phone or "55119" + "".join(self.rng.choice("0123456789") for _ in range(8))
        lid = str(self.rng.randrange(10**14, 10**15))
        return SimIdentity(
            jid=f"{digits}@s.whatsapp.net",
            lid=f"{lid}@lid",
            push_name=f"Sim {digits[-4:]}",
            paired_at=datetime.now(UTC),
        )

    def record_delivery(self, entry: dict[str, str]) -> None:
        """Append one line; a single O_APPEND write, so concurrent processes never interleave lines."""
        if self._log_fd is None:
            raise RuntimeError("SimTransport.start() was not awaited")
        # A page-cache append of one short line: cheaper inline than a hop to a thread.
        os.write(self._log_fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())


class SimConnection(Connection):
    __slots__ = (
        "_banned_until",
        "_closed",
        "_drops",
        "_events",
        "_fail_next",
        "_identity",
        "_last_online",
        "_link_timer",
        "_logged_out",
        "_net",
        "_online",
        "_pair_timer",
        "_qr_timer",
        "_session_id",
        "_slow",
    )

    def __init__(
        self, net: SimTransport, session_id: UUID, identity: SimIdentity | None, events: ConnectionEvents
    ) -> None:
        self._net = net
        self._session_id = session_id
        self._identity = identity
        self._events = events
        self._online = False
        self._closed = False
        self._logged_out = False
        self._qr_timer: asyncio.TimerHandle | None = None
        self._pair_timer: asyncio.TimerHandle | None = None
        self._link_timer: asyncio.TimerHandle | None = None
        self._slow = 0.0
        self._fail_next = 0
        self._banned_until = 0.0
        self._drops = 0
        self._last_online = 0.0

    @staticmethod
    def _loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _later(self, delay: float, fn: Callable[..., None], *args: object) -> asyncio.TimerHandle:
        return self._loop().call_later(delay, fn, *args)

    def _cancel_timers(self) -> None:
        for timer in (self._qr_timer, self._pair_timer, self._link_timer):
            if timer is not None:
                timer.cancel()
        self._qr_timer = self._pair_timer = self._link_timer = None

    async def connect(self) -> None:
        self._closed = False
        if self._identity is not None:
            self._link_timer = self._later(RESUME_DELAY, self._go_online)
            return
        self._show_qr()
        if self._net.autopair:
            self._pair_timer = self._later(self._net.pair_delay, self._pair, None)

    def auth_data(self) -> bytes | None:
        return self._identity.model_dump_json().encode() if self._identity else None

    def _show_qr(self) -> None:
        if self._closed or self._identity is not None:
            return
        self._events.on_qr(new_qr(), datetime.now(UTC) + timedelta(seconds=QR_LIFETIME))
        self._qr_timer = self._later(QR_LIFETIME, self._show_qr)

    def _pair(self, phone: str | None) -> None:
        if self._closed or self._identity is not None:
            return
        self._cancel_timers()
        self._identity = self._net.new_identity(phone)
        self._logged_out = False
        self._events.on_auth_changed(self.auth_data())
        self._go_online()

    def _go_online(self) -> None:
        self._link_timer = None
        if self._closed or self._identity is None or self._online:
            return
        wait = self._banned_until - self._loop().time()
        if wait > 0:
            self._link_timer = self._later(wait, self._go_online)
            return
        now = self._loop().time()
        if now - self._last_online > 60:
            self._drops = 0
        self._online = True
        self._last_online = now
        self._net.online[self._identity.jid] = self
        self._events.on_connected(
            Identity(jid=self._identity.jid, lid=self._identity.lid, push_name=self._identity.push_name)
        )
        if self._net.faults.drop_every > 0:
            delay = self._net.rng.expovariate(1 / self._net.faults.drop_every)
            self._link_timer = self._later(delay, self._drop, "connection dropped (simulated)", None)

    def _go_offline(self) -> None:
        self._online = False
        if self._identity is not None and self._net.online.get(self._identity.jid) is self:
            del self._net.online[self._identity.jid]

    def _drop(self, reason: str, reconnect_after: float | None) -> None:
        if self._closed or not self._online:
            return
        if self._link_timer is not None:
            self._link_timer.cancel()
        self._go_offline()
        if reconnect_after is None:
            reconnect_after = min(MAX_RECONNECT_DELAY, 0.5 * 2**self._drops)
            self._drops += 1
        self._events.on_disconnected(reason, True)
        self._link_timer = self._later(reconnect_after, self._go_online)

    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        self._check_online()
        delay = max(self._slow, self._net.faults.send_delay)
        if delay > 0:
            await asyncio.sleep(delay)
            self._check_online()
        if self._fail_next > 0:
            self._fail_next -= 1
            raise TransientSendError("send failed (simulated fault)")
        if self._net.faults.fail_rate and self._net.rng.random() < self._net.faults.fail_rate:
            raise TransientSendError("send failed (simulated fail_rate)")
        if to.split("@", 1)[0].lstrip("+").startswith(NOT_ON_WHATSAPP_PREFIX):
            raise RecipientNotOnWhatsApp(f"{to} is not on WhatsApp (simulator: numbers starting 999)")
        now = datetime.now(UTC)
        self._net.record_delivery(
            {
                "message_id": str(message_id),
                "whatsapp_id": whatsapp_id,
                "session_id": str(self._session_id),
                "to": to,
                "type": content.type,
                "time": now.isoformat(),
            }
        )
        self._later(DELIVERED_AFTER, self._receipt, ReceiptKind.DELIVERED, whatsapp_id, to)
        self._later(READ_AFTER, self._receipt, ReceiptKind.READ, whatsapp_id, to)
        peer = self._net.online.get(to)
        if peer is not None and self._identity is not None:
            peer._receive(
                InboundMessage(
                    whatsapp_id=whatsapp_id,
                    chat=self._identity.jid,
                    sender=self._identity.jid,
                    sender_lid=self._identity.lid,
                    push_name=self._identity.push_name,
                    sent_at=now,
                    content=content,
                )
            )
        return whatsapp_id

    def _check_online(self) -> None:
        if self._logged_out:
            raise LoggedOut("the session was logged out")
        if self._closed or not self._online:
            raise NotConnected("the session is not connected")

    def _receipt(self, kind: ReceiptKind, whatsapp_id: str, chat: str) -> None:
        if not self._closed:
            receipt = Receipt(kind=kind, whatsapp_id=whatsapp_id, chat=chat, at=datetime.now(UTC))
            self._events.on_receipt(receipt)

    def _receive(self, message: InboundMessage) -> None:
        if not self._closed:
            self._events.on_message(message)

    async def pair_phone(self, phone: str) -> str:
        if self._identity is not None:
            raise AlreadyPaired("the session is already paired")
        if self._pair_timer is not None:
            self._pair_timer.cancel()
        self._pair_timer = self._later(self._net.pair_delay, self._pair, phone)
        code = "".join(self._net.rng.choice(PAIR_CODE_ALPHABET) for _ in range(8))
        return f"{code[:4]}-{code[4:]}"

    async def logout(self) -> None:
        self._cancel_timers()
        self._go_offline()
        self._identity = None
        self._logged_out = True
        self._events.on_auth_changed(None)
        self._events.on_logged_out("logged out by request")

    async def close(self) -> None:
        self._closed = True
        self._cancel_timers()
        self._go_offline()

    async def inject_fault(self, fault: InjectFault) -> None:
        match fault.kind:
            case FaultKind.DROP:
                self._drop("connection dropped (simulated fault)", None)
            case FaultKind.BAN:
                self._banned_until = self._loop().time() + fault.seconds
                self._drop(f"temporarily banned for {fault.seconds:g} s (simulated)", fault.seconds)
            case FaultKind.SLOW:
                self._slow = fault.seconds
            case FaultKind.FAIL_SENDS:
                self._fail_next = fault.count
            case FaultKind.CLEAR:
                self._slow = 0.0
                self._fail_next = 0
                self._banned_until = 0.0
