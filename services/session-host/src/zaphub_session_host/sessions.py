"""The per-session runner and this host's table of them.

A `SessionRunner` owns one transport connection, drives the session's state machine from the
connection's callbacks (what they mean as contract events is session_events.py), and serves the
session's host request subject while this host holds the lease.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import EditContent, MediaContent, RevokeContent, TextContent
from zaphub_contracts.host import HostOk, InjectFault, Simulate
from zaphub_contracts.sessions import HandedOver, whatsapp_message_id
from zaphub_contracts.statuses import SessionStatus
from zaphub_session_host.auth_store import AuthDataRefused, AuthSaver
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.link_previews import LinkPreviews
from zaphub_session_host.media_saver import MediaSaver
from zaphub_session_host.sent_log import SentLog
from zaphub_session_host.session_events import RecentSends, SessionEvents
from zaphub_session_host.state import InvalidTransition, SessionEvent, SessionMachine
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    ChatUpdate,
    Connection,
    GroupChange,
    Groups,
    HistoryBatch,
    HistorySync,
    Identity,
    InboundMessage,
    LoggedOut,
    NotConnected,
    PresenceSeen,
    Receipt,
    Transport,
)

log = logging.getLogger(__name__)

DRAIN_REQUESTS_TIMEOUT = 5.0


class RequestHandler(Protocol):
    """Answers the requests on a session's own subject (handlers.py)."""

    async def serve(self, runner: "SessionRunner", msg: Msg) -> None: ...


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
    requests: "RequestHandler"
    recent_sends: RecentSends = field(default_factory=RecentSends)
    media: "MediaSaver | None" = None  # None: received media is not stored (ZAPHUB_MEDIA_DOWNLOAD=off)
    previews: LinkPreviews | None = None  # None: `link_preview` is ignored, texts go without one
    history_sync: HistorySync = HistorySync.RECENT
    history_max_messages: int = 20_000
    # Raises while this host cannot confirm the session's lease (Leases.check); a send then waits
    # for its owner instead of going out from two hosts at once.
    lease_check: Callable[[UUID], None] = lambda _: None


class SessionRunner:
    __slots__ = (
        "connection",
        "ctx",
        "deleted",
        "events",
        "history_left",
        "identity",
        "machine",
        "paused_auth",
        "refused",
        "send_lock",
        "session_id",
        "sub",
        "tenant_id",
        "unlinked",
    )

    def __init__(self, ctx: HostContext, tenant_id: UUID, session_id: UUID) -> None:
        self.ctx = ctx
        self.tenant_id = tenant_id
        self.session_id = session_id
        self.history_left = ctx.history_max_messages  # a full sync must not flood the host's events
        self.machine = SessionMachine()
        self.events = SessionEvents(ctx.publisher, ctx.source, ctx.recent_sends, tenant_id, session_id)
        self.connection: Connection | None = None
        self.identity: Identity | None = None
        self.send_lock = asyncio.Lock()
        self.sub: Subscription | None = None
        self.deleted = False  # its auth_data was deleted: never write it again
        self.refused: str | None = None  # why its stored auth_data was refused, while it is
        self.paused_auth: bytes | None = None  # the identity to reconnect with, while paused
        # Logged out by request and showing a new QR code: refused as logged out until paired again.
        self.unlinked = False

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
        await self.ctx.requests.serve(self, msg)

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
            self.events.disconnected(reason, will_reconnect=handover)

    # Operations served by handlers.py.

    def _require_connection(self) -> Connection:
        if self.connection is None:
            raise NotConnected("the session is stopping")
        return self.connection

    @property
    def logged_out(self) -> bool:
        """Logged out, or logged out by request and waiting at a new QR code for its next pairing."""
        return self.status is SessionStatus.LOGGED_OUT or self.unlinked

    def online(self) -> Connection:
        """The connection, for the host requests that read or act on WhatsApp (contacts, presence);
        each capability then checks it is online."""
        if self.logged_out:
            raise LoggedOut("the session was logged out; pair it again")
        return self._require_connection()

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
                        # Neither the hand-over nor its record is cancelled with this request.
                        handed, written = await self.ctx.sent_log.outliving(self._hand_over_logged(cmd))
                        done.append(self._ok(handed))
                    # It went out: if it cannot be recorded, the run ends here, so that a repeat of
                    # it (not recognised as one) is not handed over after later messages.
                    await written
            except Exception as exc:
                return done, exc
        return done, None

    async def _hand_over_logged(self, cmd: SendMessage) -> tuple[HandedOver, asyncio.Future[None]]:
        handed = await self._hand_over(cmd)
        return handed, self.ctx.sent_log.write(handed)

    async def _hand_over(self, cmd: SendMessage) -> HandedOver:
        self.ctx.lease_check(self.session_id)
        if self.logged_out:
            raise LoggedOut("the session was logged out; pair it again")
        if not self.machine.can_send:
            raise NotConnected(f"the session is {self.status.value}")
        connection = self._require_connection()
        content = cmd.content
        if isinstance(content, TextContent) and self.ctx.previews is not None:
            content = await self.ctx.previews.attach(content)  # never fails: without a preview instead
        whatsapp_id = await connection.messages.send(
            cmd.to, content, whatsapp_message_id(cmd.message_id), cmd.message_id
        )
        self.ctx.recent_sends.remember(whatsapp_id, cmd.message_id)
        if self.ctx.media is not None and isinstance(cmd.content, MediaContent):
            self.ctx.media.save_sent(
                self.tenant_id,
                self.session_id,
                cmd.message_id,
                whatsapp_id,
                cmd.content,
                self.events.sent_media_stored,
            )
        sent_at = datetime.now(UTC)
        if isinstance(cmd.content, EditContent | RevokeContent):
            self.events.acted(cmd.to, cmd.content, sent_at, from_me=True, event_key=whatsapp_id)
        return HandedOver(
            message_id=cmd.message_id,
            whatsapp_id=whatsapp_id,
            session_id=self.session_id,
            sent_at=sent_at,
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
        """Unlink the device; the session stays here and shows a new QR code (or takes a pairing code)
        for its next pairing, as the logout route promises."""
        if self.connection is None and self.refused is not None:
            self.ctx.auth.put(
                self.tenant_id, self.session_id, None
            )  # nothing to unlink: drop what was refused
        else:
            await self._require_connection().logout()
        await self.ctx.auth.flush()
        await self._pair_again()

    async def _pair_again(self) -> None:
        """A fresh connection without an identity, after a logout by request."""
        if self.deleted or self.sub is None:
            return  # being deleted or stopped: nothing to pair
        old, self.connection = self.connection, None
        if old is not None:
            await old.close()
        self.unlinked = True
        self.identity = None
        self.refused = None
        self._move(SessionEvent.RESTARTED)
        self.connection = self.ctx.transport.open(self.tenant_id, self.session_id, None, self)
        await self.connection.connect()

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

    async def pause(self) -> None:
        """Stop taking from WhatsApp (the host's event spool is full): close the connection and keep
        its identity; WhatsApp holds what it could not deliver. Sends meanwhile find it not connected."""
        connection = self.connection
        if connection is None or self.paused_auth is not None:
            return
        self.paused_auth = connection.auth_data() or b""
        self.connection = None
        await connection.close()

    async def resume(self) -> None:
        """Connect again after `pause`, with the identity it had."""
        auth, self.paused_auth = self.paused_auth, None
        if auth is None or self.sub is None or self.connection is not None:
            return
        self.connection = self.ctx.transport.open(self.tenant_id, self.session_id, auth or None, self)
        await self.connection.connect()

    async def pair_code(self, phone: str) -> str:
        if not self.machine.can_pair:
            raise AlreadyPaired(f"the session is {self.status.value}; only an unpaired session can pair")
        code = await self._require_connection().pair_phone(phone)
        self.events.pair_code(code, phone)
        return code

    def groups(self) -> Groups:
        """The connection's groups capability, once the session can talk to WhatsApp."""
        if self.logged_out:
            raise LoggedOut("the session was logged out; pair it again")
        if not self.machine.can_send:
            raise NotConnected(f"the session is {self.status.value}")
        return self._require_connection().groups

    async def inject_fault(self, fault: InjectFault) -> None:
        await self._require_connection().inject_fault(fault)

    async def simulate(self, request: Simulate) -> str | None:
        return await self._require_connection().simulate(request)

    # ConnectionEvents: called by the transport, synchronously and in order.

    def on_qr(self, qr: str, expires_at: datetime) -> None:
        if self._move(SessionEvent.QR_SHOWN):
            self.events.qr(qr, expires_at)

    def on_connected(self, identity: Identity) -> None:
        if self._move(SessionEvent.CONNECTED):
            self.unlinked = False
            self.identity = identity
            self.events.connected(identity, self.ctx.host_id)

    def on_disconnected(self, reason: str, will_reconnect: bool) -> None:
        if self._move(SessionEvent.CONNECTION_LOST):
            self.events.disconnected(reason, will_reconnect)

    def on_logged_out(self, reason: str) -> None:
        self.ctx.auth.put(self.tenant_id, self.session_id, None)
        if self._move(SessionEvent.LOGGED_OUT):
            self.identity = None
            self.events.logged_out(reason)

    def on_failed(self, reason: str, detail: str = "") -> None:
        if self._move(SessionEvent.FAILED):
            self.events.failed(reason, detail)

    def on_auth_changed(self, auth_data: bytes | None) -> None:
        if not self.deleted:
            self.ctx.auth.put(self.tenant_id, self.session_id, auth_data)

    def on_message(self, message: InboundMessage) -> None:
        message_id = self.events.message(message)
        if message_id is not None and self.ctx.media is not None and self.connection is not None:
            self.ctx.media.save(
                self.tenant_id,
                self.session_id,
                message_id,
                message,
                self.connection.download,
                self.events.media_stored,
            )

    def on_receipt(self, receipt: Receipt) -> None:
        self.events.receipt(receipt)

    def on_update(self, update: ChatUpdate) -> None:
        self.events.update(update)

    def on_group(self, change: GroupChange) -> None:
        self.events.group(change)

    def on_history(self, batch: HistoryBatch) -> None:
        if self.ctx.history_sync is HistorySync.OFF or self.history_left <= 0:
            return
        if len(batch.messages) > self.history_left:  # the newest ones are kept
            log.info(
                "history sync over ZAPHUB_HISTORY_MAX_MESSAGES: older messages not imported",
                extra={
                    "fields": {
                        "session_id": str(self.session_id),
                        "dropped": len(batch.messages) - self.history_left,
                    }
                },
            )
            batch = replace(batch, messages=batch.messages[-self.history_left :])
        self.history_left -= len(batch.messages)
        self.events.history(batch, self.identity.jid if self.identity else None)

    def on_presence(self, presence: PresenceSeen) -> None:
        self.events.presence(presence)

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

    async def pause(self) -> None:
        """Every session here stops taking from WhatsApp, until `resume`."""
        runners = list(self.runners.values())
        results = await asyncio.gather(*(r.pause() for r in runners), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("could not pause a session", exc_info=result)

    async def resume(self) -> None:
        runners = list(self.runners.values())
        results = await asyncio.gather(*(r.resume() for r in runners), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("could not resume a session", exc_info=result)

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
