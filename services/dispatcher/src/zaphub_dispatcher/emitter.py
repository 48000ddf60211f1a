"""The message lifecycle events the dispatcher owns: sent, failed, rate_limited.

Event ids derive from the message id, so a repeat after a crash is deduplicated by JetStream and by
the projector's history.
"""

from datetime import UTC, datetime

from zaphub_contracts import events as ev
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.ratelimit import WindowName
from zaphub_runtime.bus import Bus


class Emitter:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

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
        data = ev.MessageRateLimitedData(
            message_id=command.message_id, retry_after=retry_after, window=window
        )
        await self._bus.publish_event(
            ev.MessageRateLimited(**self._envelope(command, "rate_limited"), data=data)
        )
