"""The message lifecycle events the dispatcher owns: sent, failed, rate_limited.

Event ids derive from the message id, so a repeat after a crash is deduplicated by JetStream and by
the projector's history.
"""

from collections import OrderedDict
from datetime import UTC, datetime
from uuid import UUID

from zaphub_contracts import events as ev
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.ratelimit import WindowName
from zaphub_runtime.bus import Bus


class MessageEvents:
    """Publishes a message's lifecycle events as the send pipeline decides them."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        # `message.rate_limited` goes out once per message; this spares repeated publishes that
        # JetStream would drop as duplicates anyway.
        self._rate_limited: OrderedDict[UUID, None] = OrderedDict()

    def _envelope(self, command: SendMessage, kind: str) -> dict[str, object]:
        return {
            "id": ev.EventBase.derive_id(command.message_id, kind),
            "source": self._bus.source,
            "time": datetime.now(UTC),
            "subject": f"messages/{command.message_id}",
            "tenantid": command.tenant_id,
            "sessionid": command.session_id,
        }

    async def sent(self, command: SendMessage, whatsapp_id: str, sent_at: datetime) -> None:
        data = ev.MessageSentData(
            message_id=command.message_id, whatsapp_id=whatsapp_id, to=command.to, sent_at=sent_at
        )
        await self._bus.publish_event(ev.MessageSent(**self._envelope(command, "sent"), data=data))

    async def failed(self, command: SendMessage, reason: FailureReason, detail: str, attempts: int) -> None:
        data = ev.MessageFailedData(
            message_id=command.message_id, reason=reason, detail=detail, attempts=attempts
        )
        await self._bus.publish_event(ev.MessageFailed(**self._envelope(command, "failed"), data=data))

    async def rate_limited(self, command: SendMessage, retry_after: float, window: WindowName | None) -> None:
        if command.message_id in self._rate_limited:
            return
        self._rate_limited[command.message_id] = None
        if len(self._rate_limited) > 100_000:
            self._rate_limited.popitem(last=False)
        data = ev.MessageRateLimitedData(
            message_id=command.message_id, retry_after=retry_after, window=window
        )
        await self._bus.publish_event(
            ev.MessageRateLimited(**self._envelope(command, "rate_limited"), data=data)
        )
