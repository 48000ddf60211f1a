"""The publisher of session commands (start, delete, logout, ...) for the dispatcher to carry out."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from nats.js.errors import APIError

from zaphub_api.domain_errors import BusUnavailable, CommandStreamFull
from zaphub_contracts import subjects
from zaphub_contracts.commands import SessionAction, SessionCommand
from zaphub_runtime.bus import Bus


class CommandPublisher:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(
        self,
        action: SessionAction,
        tenant_id: UUID,
        session_id: UUID,
        name: str | None = None,
        phone: str | None = None,
    ) -> None:
        command = SessionCommand(
            tenant_id=tenant_id,
            session_id=session_id,
            issued_at=datetime.now(UTC),
            action=action,
            name=name,
            phone=phone,
        )
        try:
            await self._bus.publish_command(
                subjects.session_command(action, tenant_id, session_id), command, f"{session_id}:{uuid4()}"
            )
        except Exception as exc:
            raise refusal(exc) from exc


def is_stream_full(exc: BaseException) -> bool:
    """JetStream refused the publish because the stream is at its limits (`discard: new`)."""
    return isinstance(exc, APIError) and "exceeded" in str(exc.description or "").lower()


def refusal(exc: BaseException) -> BusUnavailable | CommandStreamFull:
    """The domain error of a failed command publish: the stream is full, or the bus is unavailable."""
    if is_stream_full(exc):
        return CommandStreamFull("The command stream is full; nothing was changed, retry later")
    return BusUnavailable()
