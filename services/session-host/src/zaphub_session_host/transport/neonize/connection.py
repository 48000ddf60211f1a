"""One session's neonize client (`NewAClient`): connecting, reconnecting, pairing, logging out and the
auth_data snapshots of its store, with whatsmeow's events mapped onto `ConnectionEvents`.

Event handlers are registered before `connect()`. whatsmeow reconnects a dropped live connection itself;
a connect attempt that fails (Go `Neonize()` returns an error) is retried here with exponential backoff
and jitter. Logged out, stream replaced, temporary ban and outdated client stop the client: no
reconnect loop. auth_data (store_snapshot.py) is refreshed after pairing/connecting, after activity
(debounced) and periodically, and reported through `on_auth_changed`.
"""

import asyncio
import hashlib
import logging
import random
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from neonize.aioze.client import NewAClient
from neonize.aioze.events import (
    ChatPresenceEv,
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    GroupInfoEv,
    HistorySyncEv,
    JoinedGroupEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    PictureEv,
    PresenceEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.exc import LogoutError, NeonizeError, PairPhoneError

from zaphub_contracts.events import GroupParticipantsData
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    Connection,
    ConnectionEvents,
    Identity,
    InboundMessage,
    LoggedOut,
    NotConnected,
)
from zaphub_session_host.transport.neonize import gate
from zaphub_session_host.transport.neonize.contacts import NeonizeContacts
from zaphub_session_host.transport.neonize.downloads import DOWNLOAD_TIMEOUT, download_request
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import (
    LID_SERVER,
    USER_SERVER,
    chat_presence_from_event,
    failure_reason_name,
    identity_from_device,
    inbound_from_event,
    jid_str,
    logged_out_reason,
    parse_jid,
    presence_from_event,
    receipts_from_event,
    temporary_ban_reason,
)
from zaphub_session_host.transport.neonize.groups import (
    NeonizeGroups,
    carries_settings,
    change_from_joined,
    change_from_picture,
    changes_from_info_event,
    group_from_info,
)
from zaphub_session_host.transport.neonize.history import batches_from_history, device_props
from zaphub_session_host.transport.neonize.messages import NeonizeMessages
from zaphub_session_host.transport.neonize.presence import NeonizePresence
from zaphub_session_host.transport.neonize.store_snapshot import is_sqlite, seed_sqlite, snapshot_sqlite

if TYPE_CHECKING:
    from zaphub_session_host.transport.neonize.transport import NeonizeTransport

log = logging.getLogger(__name__)

FIRST_QR_LIFETIME = 60.0  # whatsmeow shows the first code for 60 s, the following ones for 20 s
QR_LIFETIME = 20.0
RECONNECT_BASE = 1.0
RECONNECT_MAX = 60.0
SNAPSHOT_DEBOUNCE = 30.0  # at most one auth snapshot per this many seconds after activity
SNAPSHOT_EVERY = 300.0
PAIR_WAIT = 15.0  # pairing by phone needs the first QR (whatsmeow's rule); wait this long for it
LOGOUT_SETTLE_TIMEOUT = 10.0  # the Go client stopping and its store emptied after a logout


def _fields(**kv: object) -> dict[str, dict[str, object]]:
    return {"fields": kv}


class NeonizeConnection(Connection):
    """One session's neonize client and what it reported."""

    messages: NeonizeMessages
    groups: NeonizeGroups
    contacts: NeonizeContacts
    presence: NeonizePresence

    __slots__ = (
        "_attempts",
        "_auth",
        "_auth_digest",
        "_background",
        "_closed",
        "_events",
        "_go",
        "_identity",
        "_last_snapshot",
        "_logged_out",
        "_online",
        "_qr_count",
        "_qr_seen",
        "_retry",
        "_seeded",
        "_snapshot_timer",
        "_stopped_reason",
        "client",
        "contacts",
        "groups",
        "messages",
        "path",
        "presence",
        "session_id",
        "tenant_id",
    )

    def __init__(
        self,
        transport: "NeonizeTransport",
        tenant_id: UUID,
        session_id: UUID,
        auth_data: bytes | None,
        events: ConnectionEvents,
    ) -> None:
        self.tenant_id = tenant_id
        self.session_id = session_id
        self._events = events
        self.path = transport.store_path(tenant_id, session_id)
        if auth_data is not None and not is_sqlite(auth_data):
            log.warning(
                "auth_data is not a neonize store (another transport's?); the session pairs afresh",
                extra=_fields(session_id=str(session_id)),
            )
            auth_data = None
        self._auth = auth_data
        self._auth_digest = hashlib.sha256(auth_data).digest() if auth_data else b""
        self._seeded = False
        # The uuid is the key of the Go client table; unique per connection, because neonize stops the
        # Go client of that key when the Python object is collected (an old one must not stop a new one).
        self.client = NewAClient(
            str(self.path),
            props=device_props(transport.history_sync),
            uuid=f"{session_id}-{secrets.token_hex(4)}",
        )
        self._go: asyncio.Future[Any] | None = None
        self._identity: Identity | None = None
        self._online = False
        self._closed = False
        self._logged_out = False
        self._stopped_reason: str | None = None  # why the client was stopped for good (ban, replaced)
        self._attempts = 0
        self._retry: asyncio.TimerHandle | None = None
        self._snapshot_timer: asyncio.TimerHandle | None = None
        self._last_snapshot = 0.0
        self._qr_count = 0
        self._qr_seen = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self.messages = NeonizeMessages(self, transport)
        self.groups = NeonizeGroups(self)
        self.contacts = NeonizeContacts(self)
        self.presence = NeonizePresence(self)
        self._register()

    # Wiring of neonize events.

    def _handlers(self) -> dict[Any, Callable[[Any], Awaitable[None] | None]]:
        return {
            ConnectedEv: self._on_connected,
            DisconnectedEv: self._on_disconnected,
            LoggedOutEv: self._on_logged_out,
            StreamReplacedEv: self._on_stream_replaced,
            TemporaryBanEv: self._on_temporary_ban,
            ConnectFailureEv: self._on_connect_failure,
            ClientOutdatedEv: self._on_client_outdated,
            PairStatusEv: self._on_pair_status,
            MessageEv: self._on_message,
            ReceiptEv: self._on_receipt,
            JoinedGroupEv: self._on_joined_group,
            GroupInfoEv: self._on_group_info,
            PictureEv: self._on_picture,
            HistorySyncEv: self._on_history_sync,
            PresenceEv: self._on_presence,
            ChatPresenceEv: self._on_chat_presence,
        }

    def _register(self) -> None:
        ev = self.client.event
        ev.qr(self._guard(self.handle))
        for event_type, handler in self._handlers().items():
            ev(event_type)(self._guard(handler))

    def _guard(
        self, handler: Callable[[Any], Awaitable[None] | None]
    ) -> Callable[[Any, Any], Awaitable[None]]:
        """neonize calls `handler(client, event)` on the loop; drop events after close, never raise."""

        async def run(_client: Any, event: Any) -> None:
            if self._closed:
                return
            try:
                result = handler(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("neonize event handler failed", extra=_fields(session_id=str(self.session_id)))

        return run

    def handle(self, event: Any) -> Awaitable[None] | None:
        """Apply one neonize event object (a QR as bytes) as the Go callback path does."""
        if isinstance(event, bytes | str):
            self._on_qr(event)
            return None
        handler = self._handlers().get(type(event))
        if handler is None:
            raise TypeError(f"not a neonize event this transport handles: {type(event).__name__}")
        return handler(event)

    def _on_qr(self, data: bytes | str) -> None:
        qr = data.decode() if isinstance(data, bytes) else data
        lifetime = FIRST_QR_LIFETIME if self._qr_count == 0 else QR_LIFETIME
        self._qr_count += 1
        self._qr_seen.set()
        self._events.on_qr(qr, datetime.now(UTC) + timedelta(seconds=lifetime))

    async def _on_connected(self, _event: Any) -> None:
        self._online = True
        self._attempts = 0
        identity = await self._fetch_identity()
        if self._closed or not self._online:
            return
        if identity is not None:
            self._identity = identity
        self._events.on_connected(
            self._identity
            or Identity(jid=f"unknown@{USER_SERVER}")  # whatsmeow always has an ID once connected
        )
        self._schedule_snapshot(0.0)

    async def _fetch_identity(self) -> Identity | None:
        me = self.client.me  # neonize keeps the Device event it got from Go
        if me is None:
            try:
                me = await self.client.get_me()
            except Exception as exc:  # the Go store can be briefly busy right after pairing
                log.warning("could not read the linked identity", extra=_fields(error=repr(exc)))
                return None
        return identity_from_device(me)

    def _on_disconnected(self, _event: Any) -> None:
        if self._online:
            self._online = False
            self._events.on_disconnected("connection to WhatsApp lost; reconnecting", True)

    def _on_logged_out(self, event: Any) -> None:
        self._forget(logged_out_reason(event))

    def _on_stream_replaced(self, _event: Any) -> None:
        self._stop_for_good("stream replaced: another client connected with this session's identity")

    def _on_temporary_ban(self, event: Any) -> None:
        self._stop_for_good(temporary_ban_reason(event))

    def _on_client_outdated(self, _event: Any) -> None:
        self._stop_for_good("WhatsApp refused this client version as outdated; upgrade neonize")

    def _on_connect_failure(self, event: Any) -> None:
        reason = failure_reason_name(event.Reason)
        detail = f"connect failure ({reason}){': ' + event.Message if event.Message else ''}"
        # Logged-out and ban failures also arrive as their own events; the rest whatsmeow retries.
        if reason in ("logged_out", "main_device_gone", "unknown_logout", "temp_banned"):
            return
        if reason in ("client_outdated", "bad_user_agent"):
            self._stop_for_good(detail)
            return
        if self._online:
            self._online = False
        self._events.on_disconnected(detail, True)

    def _on_pair_status(self, event: Any) -> None:
        if event.Error:
            log.warning("pairing failed", extra=_fields(session_id=str(self.session_id), error=event.Error))
            return
        self._schedule_snapshot(0.0)

    def _on_message(self, event: Any) -> Awaitable[None] | None:
        inbound = inbound_from_event(event)
        self.store_changed()
        if inbound is None:
            return None
        sender = jid_str(event.Info.MessageSource.Sender) or inbound.sender
        self.messages.remember(inbound.whatsapp_id, sender, event.Message)
        if inbound.sender_lid is not None and inbound.sender == inbound.sender_lid:
            return self._deliver_resolved(inbound, sender)
        self._deliver(inbound, sender)
        return None

    def _deliver(self, inbound: InboundMessage, sender: str) -> None:
        self.presence.unread.received(inbound.chat, inbound.whatsapp_id, sender)
        self._events.on_message(inbound)

    async def _deliver_resolved(self, inbound: InboundMessage, sender: str) -> None:
        """A message from a LID alone (WhatsApp gave no phone number): the number whatsmeow's store
        knows for that LID, when it knows one, so the chat is the same as the peer's other messages."""
        self._deliver(await self._with_phone(inbound), sender)

    async def _with_phone(self, inbound: InboundMessage) -> InboundMessage:
        lid = inbound.sender_lid
        if lid is None:
            return inbound
        phone = await self._phone(lid)
        if phone == lid:
            return inbound
        chat = phone if not inbound.is_group and inbound.chat == lid else inbound.chat
        return replace(inbound, sender=phone, chat=chat)

    async def _phone(self, jid: str) -> str:
        """The phone JID whatsmeow's store knows for a LID; the JID itself otherwise."""
        if not jid.endswith(f"@{LID_SERVER}"):
            return jid
        try:
            phone = jid_str(await self.client.get_pn_from_lid(parse_jid(jid)))
        except NeonizeError:
            return jid
        return phone if phone is not None and not phone.endswith(f"@{LID_SERVER}") else jid

    def _on_presence(self, event: Any) -> None:
        seen = presence_from_event(event)
        if seen is not None:
            self._events.on_presence(seen)

    def _on_chat_presence(self, event: Any) -> None:
        seen = chat_presence_from_event(event)
        if seen is not None:
            self._events.on_update(seen)

    def _on_receipt(self, event: Any) -> None:
        for receipt in receipts_from_event(event):
            self._events.on_receipt(receipt)

    def _on_joined_group(self, event: Any) -> None:
        self._events.on_group(change_from_joined(event))

    def _me(self) -> frozenset[str]:
        """The account's own JID and LID, as group events name it."""
        identity = self._identity
        return (
            frozenset(j for j in (identity.jid, identity.lid) if j) if identity is not None else frozenset()
        )

    def _on_group_info(self, event: Any) -> Awaitable[None] | None:
        named = (*event.Join, *event.Leave, *event.Promote, *event.Demote)
        if carries_settings(event) or any(j.Server == LID_SERVER for j in named):
            return self._group_info_read(event)
        for change in changes_from_info_event(event, self._me()):
            self._events.on_group(change)
        return None

    async def _group_info_read(self, event: Any) -> None:
        """A settings change names only the settings that changed: the others are read from the
        group, so that none is reported with an invented value. Participants named by LID get their
        phone JID when the store knows it."""
        current = None
        if carries_settings(event):
            try:
                current = group_from_info(await self.client.get_group_info(event.JID)).settings
            except NeonizeError as exc:
                log.warning(
                    "group settings changed, but the group could not be read: settings not reported",
                    extra=_fields(session_id=str(self.session_id), error=str(exc)),
                )
        for change in changes_from_info_event(event, self._me(), current):
            if isinstance(change, GroupParticipantsData):
                phones = [await self._phone(j) for j in change.participants]
                change = change.model_copy(update={"participants": phones})
            self._events.on_group(change)

    def _on_picture(self, event: Any) -> None:
        change = change_from_picture(event)
        if change is not None:
            self._events.on_group(change)

    def _on_history_sync(self, event: Any) -> None:
        for batch in batches_from_history(event):
            self._events.on_history(batch)

    async def download(self, message: InboundMessage) -> bytes | None:
        """Received media through whatsmeow (`download_any`: CDN fetch, hash checks, decryption)."""
        if message.media is not None:
            return message.media
        request = download_request(message.content)
        if request is None:
            return None
        self.check_online()
        data: bytes = await asyncio.wait_for(self.client.download_any(request), DOWNLOAD_TIMEOUT)
        return data

    def _stop_for_good(self, reason: str) -> None:
        """Ban, replaced stream, outdated client: disconnected without a reconnect loop."""
        self._stopped_reason = reason
        self._online = False
        self._cancel_retry()
        self._spawn(self._stop_go())
        self._events.on_disconnected(reason, False)

    def _forget(self, reason: str) -> None:
        """Logged out: the identity is gone, the store file with it."""
        if self._logged_out:
            return
        self._logged_out = True
        self._online = False
        self._identity = None
        self._auth = None
        self._auth_digest = b""
        self._cancel_retry()
        self._cancel_snapshot()
        self._spawn(self._stop_go_and_delete())
        self._events.on_auth_changed(None)
        self._events.on_logged_out(reason)

    # Lifecycle.

    async def connect(self) -> None:
        self._closed = False
        if not self._seeded:
            await asyncio.to_thread(seed_sqlite, self.path, self._auth)
            self._seeded = True
        await self._start_go()

    async def _start_go(self) -> None:
        self._retry = None
        if self._closed or self._logged_out or self._stopped_reason is not None:
            return
        self._go = await gate.start(self.client)
        self._go.add_done_callback(self._on_go_exit)

    def _on_go_exit(self, fut: asyncio.Future[Any]) -> None:
        """The Go client loop ended: closed by us, or a connect attempt failed (retry with backoff)."""
        if fut is not self._go or self._closed or self._logged_out or self._stopped_reason is not None:
            return
        err = fut.exception() if not fut.cancelled() else None
        reason = f"connect failed: {err}" if err is not None else "the WhatsApp client stopped"
        was_online, self._online = self._online, False
        delay = min(RECONNECT_MAX, RECONNECT_BASE * 2**self._attempts) * random.uniform(0.8, 1.2)
        self._attempts += 1
        log.warning(
            "neonize client ended; reconnecting",
            extra=_fields(session_id=str(self.session_id), reason=reason, retry_in=round(delay, 2)),
        )
        if was_online or self._attempts == 1:
            self._events.on_disconnected(reason, True)
        self._retry = asyncio.get_running_loop().call_later(delay, self._spawn_restart)

    def _spawn_restart(self) -> None:
        self._spawn(self._restart_go())

    async def _restart_go(self) -> None:
        await self._stop_go()
        await self._start_go()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_go(self) -> None:
        """Stop the Go client (safe when it never started); its `Neonize()` call then returns."""
        await gate.stop(self.client)

    async def _stop_go_and_delete(self) -> None:
        await self._stop_go()
        await asyncio.to_thread(seed_sqlite, self.path, None)

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def close(self) -> None:
        self._closed = True
        self._online = False
        self._cancel_retry()
        self._cancel_snapshot()
        await self._stop_go()
        for task in list(self._background):
            task.cancel()

    @property
    def reconnect_pending(self) -> bool:
        return self._retry is not None

    # auth_data.

    def auth_data(self) -> bytes | None:
        return self._auth

    def _cancel_snapshot(self) -> None:
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
            self._snapshot_timer = None

    def store_changed(self) -> None:
        """Activity wrote to the store: snapshot it, at most once per SNAPSHOT_DEBOUNCE."""
        self._schedule_snapshot(SNAPSHOT_DEBOUNCE)

    def _schedule_snapshot(self, debounce: float) -> None:
        """Snapshot soon; after activity at most once per `debounce`, and every SNAPSHOT_EVERY anyway."""
        if self._closed or self._logged_out or self._snapshot_timer is not None:
            return
        wait = max(0.0, self._last_snapshot + debounce - time.monotonic())
        self._snapshot_timer = asyncio.get_running_loop().call_later(wait, self._spawn_snapshot)

    def _spawn_snapshot(self) -> None:
        self._snapshot_timer = None
        self._spawn(self.refresh_auth())

    async def refresh_auth(self) -> bytes | None:
        """Take a snapshot of the store now; report it through `on_auth_changed` when it changed."""
        self._last_snapshot = time.monotonic()
        try:
            data = await asyncio.to_thread(snapshot_sqlite, self.path)
        except sqlite3.Error as exc:
            log.warning(
                "auth snapshot failed", extra=_fields(session_id=str(self.session_id), error=repr(exc))
            )
            return self._auth
        if self._closed or self._logged_out or data is None:
            return self._auth
        digest = hashlib.sha256(data).digest()
        if digest != self._auth_digest and self._is_paired_store(data):
            self._auth, self._auth_digest = data, digest
            self._events.on_auth_changed(data)
        if self._online and self._snapshot_timer is None:
            self._snapshot_timer = asyncio.get_running_loop().call_later(SNAPSHOT_EVERY, self._spawn_snapshot)
        return self._auth

    def _is_paired_store(self, data: bytes) -> bool:
        # An unpaired store holds no identity: saving it would only overwrite nothing with nothing.
        return self._identity is not None or self._auth is not None

    # What the capabilities ask of the connection.

    @property
    def identity(self) -> Identity | None:
        return self._identity

    def check_online(self) -> None:
        """Raise the named error when nothing can be asked of WhatsApp right now."""
        if self._logged_out:
            raise LoggedOut("the session was logged out")
        if self._stopped_reason is not None:
            raise NotConnected(self._stopped_reason)
        if self._closed or not self._online:
            raise NotConnected("the session is not connected")

    async def pair_phone(self, phone: str) -> str:
        if self._identity is not None or self._auth is not None:
            raise AlreadyPaired("the session is already paired")
        if self._closed or self._go is None:
            raise NotConnected("the session is not connecting")
        try:
            await asyncio.wait_for(self._qr_seen.wait(), PAIR_WAIT)
        except TimeoutError:
            raise NotConnected("WhatsApp has not offered pairing yet; try again shortly") from None
        try:
            code = await self.client.PairPhone(phone, True)
        except PairPhoneError as exc:
            raise map_send_error(f"pairing by phone failed: {exc}") from exc
        return str(code)

    async def logout(self) -> None:
        if self._online:
            try:
                await self.client.logout()
            except LogoutError as exc:
                log.warning(
                    "WhatsApp logout failed; forgetting the device here anyway", extra=_fields(error=str(exc))
                )
        else:
            log.warning(
                "logout while not connected: the device is forgotten here but stays listed on the phone",
                extra=_fields(session_id=str(self.session_id)),
            )
        self._forget("logged out by request")
        # The Go client stops and its store is emptied in the background: wait for it, so the
        # session's next connection (a new QR code) does not share the store file with it.
        pending = [task for task in self._background if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=LOGOUT_SETTLE_TIMEOUT)
