"""The per-session runner and this host's table of them.

A `SessionRunner` owns one transport connection, drives the session's state machine from the
connection's callbacks, turns what happens into contract events, and serves the session's host
request subject while this host holds the lease.
"""

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.events import (
    EVENT_NAMESPACE,
    EventBase,
    EventData,
    MessageDelivered,
    MessageRead,
    MessageReceiptData,
    MessageReceived,
    MessageReceivedData,
    SessionConnected,
    SessionConnectedData,
    SessionDisconnected,
    SessionDisconnectedData,
    SessionFailed,
    SessionFailedData,
    SessionLoggedOut,
    SessionLoggedOutData,
    SessionPairCode,
    SessionPairCodeData,
    SessionQr,
    SessionQrData,
)
from zaphub_contracts.host import HostOk, InjectFault
from zaphub_contracts.sessions import HandedOver, whatsapp_message_id
from zaphub_contracts.statuses import SessionStatus
from zaphub_session_host.auth_store import AuthDataRefused, AuthSaver
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.sent_log import SentLog
from zaphub_session_host.state import InvalidTransition, SessionEvent, SessionMachine
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    Connection,
    Identity,
    InboundMessage,
    LoggedOut,
    NotConnected,
    Receipt,
    ReceiptKind,
    Transport,
)

log = logging.getLogger(__name__)

RECENT_SENDS = 100_000  # WhatsApp id -> ZapHub id, so receipts carry the message id
DRAIN_REQUESTS_TIMEOUT = 5.0


@dataclass
class HostContext:
    """What every runner of this host shares."""

    host_id: str
    source: str
    nc: Client
    transport: Transport
    auth: AuthSaver
    publisher: EventPublisher
    sent_log: SentLog
    serve: Callable[["SessionRunner", Msg], Awaitable[None]]
    recent_sends: OrderedDict[str, UUID] = field(default_factory=OrderedDict)

    def remember_send(self, whatsapp_id: str, message_id: UUID) -> None:
        self.recent_sends[whatsapp_id] = message_id
        if len(self.recent_sends) > RECENT_SENDS:
            self.recent_sends.popitem(last=False)


class SessionRunner:
    __slots__ = (
        "connection",
        "ctx",
        "deleted",
        "identity",
        "machine",
        "refused",
        "send_lock",
        "session_id",
        "sub",
        "tenant_id",
    )

    def __init__(self, ctx: HostContext, tenant_id: UUID, session_id: UUID) -> None:
        self.ctx = ctx
        self.tenant_id = tenant_id
        self.session_id = session_id
        self.machine = SessionMachine()
        self.connection: Connection | None = None
        self.identity: Identity | None = None
        self.send_lock = asyncio.Lock()
        self.sub: Subscription | None = None
        self.deleted = False  # its auth_data was deleted: never write it again
        self.refused: str | None = None  # why its stored auth_data was refused, while it is

    @property
    def status(self) -> SessionStatus:
        return self.machine.state

    async def start(self) -> None:
        """Serve the request subject, load auth_data, and connect."""
        self.sub = await self.ctx.nc.subscribe(subjects.host(self.session_id, "*"), cb=self._on_request)
        await self._load_and_connect()

    async def _load_and_connect(self) -> None:
        """Connect with the stored identity. One that fails authentication is never used (nor
        overwritten by a new pairing): the session fails with the reason and waits for an operator."""
        try:
            auth = await self.ctx.auth.load(self.tenant_id, self.session_id)
        except AuthDataRefused as exc:
            self.refused = str(exc)
            log.error(
                "auth_data refused", extra={"fields": {"session_id": str(self.session_id), "why": str(exc)}}
            )
            self.on_failed(AuthDataRefused.reason, str(exc))
            return
        self.refused = None
        self.connection = self.ctx.transport.open(self.tenant_id, self.session_id, auth, self)
        await self.connection.connect()

    async def _on_request(self, msg: Msg) -> None:
        await self.ctx.serve(self, msg)

    async def stop(self, reason: str, *, lost: bool = False, handover: bool = False) -> None:
        """Stop here. `lost`: the lease is gone, cut at once and write nothing. Otherwise finish the
        requests already received, save auth_data and say so with `session.disconnected`."""
        sub, self.sub = self.sub, None
        if sub is not None:
            try:
                if lost:
                    await sub.unsubscribe()
                else:
                    await asyncio.wait_for(sub.drain(), DRAIN_REQUESTS_TIMEOUT)  # type: ignore[no-untyped-call]
            except (NatsError, TimeoutError):
                pass  # the connection is going away or the sub is gone already
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if not lost and not self.deleted:
            data = connection.auth_data()
            if data is not None:
                self.ctx.auth.put(self.tenant_id, self.session_id, data)
        await connection.close()
        if lost:
            return
        if self._move(SessionEvent.CLOSED) and self.status is SessionStatus.DISCONNECTED:
            self._emit(SessionDisconnected, SessionDisconnectedData(reason=reason, will_reconnect=handover))

    # Operations served by handlers.py.

    def _require_connection(self) -> Connection:
        if self.connection is None:
            raise NotConnected("the session is stopping")
        return self.connection

    async def send_run(
        self,
        commands: Sequence[SendMessage],
        seconds: float,
        each: Callable[[int], AbstractContextManager[object]],
    ) -> tuple[list[HostOk], Exception | None]:
        """Hand `commands` to WhatsApp in turn (`each(i)` wraps the i-th), up to the first that cannot
        go, starting none later than `seconds` after the first: what went out, and why the next did
        not (None when the time was up or all went). Each hand-over is in the sent log before the next
        starts, so a repeat after a crash is answered as a duplicate instead of sent again, in order."""
        done: list[HostOk] = []
        async with self.send_lock:
            try:
                # Looked up together: almost always none was sent before.
                priors = await asyncio.gather(*(self.ctx.sent_log.get(cmd.message_id) for cmd in commands))
                started = time.monotonic()
                for i, (cmd, prior) in enumerate(zip(commands, priors, strict=True)):
                    if prior is not None:
                        with each(i):
                            done.append(self._ok(prior, duplicate=True))
                        continue
                    if i and time.monotonic() - started > seconds:
                        break  # the rest go in the next run, with tokens granted closer to their turn
                    with each(i):
                        handed = await self._hand_over(cmd)
                        done.append(self._ok(handed))
                    # It went out: if it cannot be recorded, the run ends here, so that a repeat of
                    # it (not recognised as one) is not handed over after later messages.
                    await self.ctx.sent_log.record(handed)
            except Exception as exc:
                return done, exc
        return done, None

    async def _hand_over(self, cmd: SendMessage) -> HandedOver:
        if self.status is SessionStatus.LOGGED_OUT:
            raise LoggedOut("the session was logged out; pair it again")
        if not self.machine.can_send:
            raise NotConnected(f"the session is {self.status.value}")
        connection = self._require_connection()
        whatsapp_id = await connection.messages.send(
            cmd.to, cmd.content, whatsapp_message_id(cmd.message_id), cmd.message_id
        )
        self.ctx.remember_send(whatsapp_id, cmd.message_id)
        return HandedOver(
            message_id=cmd.message_id,
            whatsapp_id=whatsapp_id,
            session_id=self.session_id,
            sent_at=datetime.now(UTC),
            host_id=self.ctx.host_id,
        )

    def _ok(self, handed: HandedOver, duplicate: bool = False) -> HostOk:
        return HostOk(
            host_id=self.ctx.host_id,
            whatsapp_id=handed.whatsapp_id,
            sent_at=handed.sent_at,
            duplicate=duplicate,
        )

    async def logout(self) -> None:
        if self.connection is None and self.refused is not None:
            self.ctx.auth.put(
                self.tenant_id, self.session_id, None
            )  # nothing to unlink: drop what was refused
        else:
            await self._require_connection().logout()
        await self.ctx.auth.flush()

    async def delete_auth(self) -> None:
        """Delete the stored auth_data now; whatever the connection reports later is not written."""
        self.deleted = True
        self.ctx.auth.put(self.tenant_id, self.session_id, None)
        await self.ctx.auth.flush()

    async def restart(self) -> None:
        """Reconnect from scratch here with the identity we have (a logged-out session shows a QR);
        a session whose auth_data was refused loads it again."""
        old = self.connection
        if old is None and self.refused is None:
            raise NotConnected("the session is stopping")
        self.connection = None
        auth = old.auth_data() if old is not None else None
        if old is not None:
            await old.close()
        self._move(SessionEvent.RESTARTED)
        self.identity = None
        if old is None:
            await self._load_and_connect()
            return
        self.connection = self.ctx.transport.open(self.tenant_id, self.session_id, auth, self)
        await self.connection.connect()

    async def pair_code(self, phone: str) -> str:
        if not self.machine.can_pair:
            raise AlreadyPaired(f"the session is {self.status.value}; only an unpaired session can pair")
        code = await self._require_connection().pair_phone(phone)
        self._emit(
            SessionPairCode,
            SessionPairCodeData(code=code, phone=phone),
            event_id=EventBase.derive_id(self.session_id, "pair_code", code),
        )
        return code

    async def inject_fault(self, fault: InjectFault) -> None:
        await self._require_connection().inject_fault(fault)

    # ConnectionEvents: called by the transport, synchronously and in order.

    def on_qr(self, qr: str, expires_at: datetime) -> None:
        if self._move(SessionEvent.QR_SHOWN):
            self._emit(
                SessionQr,
                SessionQrData(qr=qr, expires_at=expires_at),
                event_id=EventBase.derive_id(self.session_id, "qr", qr),
            )

    def on_connected(self, identity: Identity) -> None:
        if self._move(SessionEvent.CONNECTED):
            self.identity = identity
            self._emit(
                SessionConnected,
                SessionConnectedData(
                    jid=identity.jid, lid=identity.lid, push_name=identity.push_name, host_id=self.ctx.host_id
                ),
            )

    def on_disconnected(self, reason: str, will_reconnect: bool) -> None:
        if self._move(SessionEvent.CONNECTION_LOST):
            data = SessionDisconnectedData(reason=reason, will_reconnect=will_reconnect)
            self._emit(SessionDisconnected, data)

    def on_logged_out(self, reason: str) -> None:
        self.ctx.auth.put(self.tenant_id, self.session_id, None)
        if self._move(SessionEvent.LOGGED_OUT):
            self.identity = None
            self._emit(SessionLoggedOut, SessionLoggedOutData(reason=reason))

    def on_failed(self, reason: str, detail: str = "") -> None:
        if self._move(SessionEvent.FAILED):
            self._emit(SessionFailed, SessionFailedData(reason=reason, detail=detail))

    def on_auth_changed(self, auth_data: bytes | None) -> None:
        if not self.deleted:
            self.ctx.auth.put(self.tenant_id, self.session_id, auth_data)

    def on_message(self, message: InboundMessage) -> None:
        message_id = uuid5(EVENT_NAMESPACE, f"received/{self.session_id}/{message.whatsapp_id}")
        self._emit(
            MessageReceived,
            MessageReceivedData(
                message_id=message_id,
                whatsapp_id=message.whatsapp_id,
                chat=message.chat,
                sender=message.sender,
                sender_lid=message.sender_lid,
                push_name=message.push_name,
                is_group=message.is_group,
                sent_at=message.sent_at,
                content=message.content,
            ),
            event_id=EventBase.derive_id(self.session_id, message.whatsapp_id, "received"),
            subject=f"messages/{message_id}",
        )

    def on_receipt(self, receipt: Receipt) -> None:
        message_id = self.ctx.recent_sends.get(receipt.whatsapp_id)
        cls: type[EventBase] = MessageDelivered if receipt.kind is ReceiptKind.DELIVERED else MessageRead
        self._emit(
            cls,
            MessageReceiptData(
                message_id=message_id, whatsapp_id=receipt.whatsapp_id, chat=receipt.chat, at=receipt.at
            ),
            event_id=EventBase.derive_id(self.session_id, receipt.whatsapp_id, receipt.kind.value),
            subject=f"messages/{message_id}" if message_id else None,
        )

    def _move(self, event: SessionEvent) -> bool:
        try:
            transition = self.machine.apply(event)
        except InvalidTransition as exc:
            log.debug(
                "ignored transition", extra={"fields": {"session": str(self.session_id), "why": str(exc)}}
            )
            return False
        if transition.changed:
            log.info(
                "session state",
                extra={
                    "fields": {
                        "session_id": str(self.session_id),
                        "from": transition.before.value,
                        "to": transition.after.value,
                    }
                },
            )
        return True

    def _emit(
        self,
        cls: type[EventBase],
        data: EventData,
        event_id: UUID | None = None,
        subject: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "id": event_id or uuid4(),
            "source": self.ctx.source,
            "time": datetime.now(UTC),
            "tenantid": self.tenant_id,
            "sessionid": self.session_id,
            "subject": subject or f"sessions/{self.session_id}",
            "data": data,
        }
        self.ctx.publisher.emit(cls(**fields))


class Sessions:
    """The sessions running on this host, by session id."""

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        self.runners: dict[UUID, SessionRunner] = {}

    def __len__(self) -> int:
        return len(self.runners)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self.runners

    def get(self, session_id: UUID) -> SessionRunner | None:
        return self.runners.get(session_id)

    async def start(self, tenant_id: UUID, session_id: UUID) -> SessionRunner:
        runner = SessionRunner(self.ctx, tenant_id, session_id)
        self.runners[session_id] = runner
        try:
            await runner.start()
        except BaseException:
            self.runners.pop(session_id, None)
            await runner.stop("start failed", lost=True)
            raise
        return runner

    async def stop(
        self, session_id: UUID, reason: str, *, lost: bool = False, handover: bool = False
    ) -> None:
        runner = self.runners.pop(session_id, None)
        if runner is not None:
            await runner.stop(reason, lost=lost, handover=handover)

    def save_auth(self) -> int:
        """Queue a save of every session's auth_data that changed since it was stored (periodic
        safety net: transports report changes, but one missed report must not cost a re-pairing)."""
        queued = 0
        for runner in self.runners.values():
            if runner.connection is None or runner.deleted:
                continue
            data = runner.connection.auth_data()
            if data is not None and self.ctx.auth.put_if_changed(runner.tenant_id, runner.session_id, data):
                queued += 1
        return queued

    def by_status(self) -> Counter[SessionStatus]:
        return Counter(r.status for r in self.runners.values())
