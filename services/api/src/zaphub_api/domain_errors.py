"""The API's domain errors, named for what went wrong. Stores, services and clients raise them;
`errors.py` maps each kind to its problem+json answer, in one place."""

from uuid import UUID


class DomainError(Exception):
    """Base of the errors the API answers deliberately; the message is the problem's detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(DomainError):
    """No API key, or one that is unknown or revoked."""


class Forbidden(DomainError):
    """The key may not use the route: a tenant key on an admin route, or the admin key on a tenant's."""


class NotFound(DomainError):
    """No such resource for the caller: another tenant's is indistinguishable from a missing one."""


class TenantNotFound(NotFound):
    def __init__(self, tenant_id: UUID) -> None:
        super().__init__(f"Tenant {tenant_id} does not exist")


class ApiKeyNotFound(NotFound):
    def __init__(self, tenant_id: UUID, key_id: UUID) -> None:
        super().__init__(f"API key {key_id} of tenant {tenant_id} does not exist")


class SessionNotFound(NotFound):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"Session {session_id} does not exist")


class NoQrCode(NotFound):
    def __init__(self, session_id: UUID, status: str) -> None:
        super().__init__(f"Session {session_id} shows no QR code now (status {status})")


class MessageNotFound(NotFound):
    def __init__(self, message_id: UUID) -> None:
        super().__init__(f"Message {message_id} does not exist")


class ChatNotFound(NotFound):
    def __init__(self, chat: str) -> None:
        super().__init__(f"The session has no chat {chat}")


class MessageHasNoMedia(NotFound):
    def __init__(self, message_id: UUID) -> None:
        super().__init__(f"Message {message_id} has no media")


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"Webhook {webhook_id} does not exist")


class DeliveryNotFound(NotFound):
    def __init__(self, webhook_id: UUID, delivery_id: UUID) -> None:
        super().__init__(f"Delivery {delivery_id} of webhook {webhook_id} does not exist")


class GroupNotFound(NotFound):
    def __init__(self, group: str, detail: str = "") -> None:
        super().__init__(
            f"Group {group} is unknown or this session is not in it" + (f" ({detail})" if detail else "")
        )


class NotGroupAdmin(Forbidden):
    """WhatsApp allows the change to group admins only; `permission` names what was refused."""

    def __init__(self, permission: str, detail: str) -> None:
        super().__init__(detail)
        self.permission = permission


class RateLimited(DomainError):
    """The tenant's rate limit has no room now; `retry_after` seconds until it has."""

    def __init__(self, retry_after: float, window: str | None) -> None:
        super().__init__(f"The tenant's {window or ''} rate limit is reached; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class Conflict(DomainError):
    """The request conflicts with the resource's current state."""


class SessionQuotaExceeded(Conflict):
    def __init__(self, max_sessions: int) -> None:
        super().__init__(f"The tenant holds its maximum of {max_sessions} sessions; delete one first")


class IdempotencyKeyReused(Conflict):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used for a different request")


class IdempotencyKeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is in progress; retry")


class AlreadyPaired(Conflict):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"Session {session_id} is already paired; log it out first to pair another number")


class SimulatorOnly(NotFound):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(
            f"Session {session_id} runs on a real WhatsApp transport; simulate exists only on the simulator"
        )


class CannotSimulate(Conflict):
    """The simulated session cannot be acted on now (logged out, moving between hosts)."""


class SessionNotConnected(Conflict):
    """The session is not connected to WhatsApp now: a query, presence or group action cannot be served."""

    def __init__(self, session_id: UUID, detail: str) -> None:
        super().__init__(f"Session {session_id} is not connected to WhatsApp now: {detail}")


class NotSupported(Conflict):
    """The session's transport cannot do this."""


class CannotPair(Conflict):
    """The session-host refused: the session is logged out, gone from it, or its transport cannot pair."""


class MediaNotReady(Conflict):
    def __init__(self, message_id: UUID, retry_after: int) -> None:
        super().__init__(f"The media of message {message_id} is not stored yet; retry in {retry_after} s")
        self.retry_after = retry_after


class Gone(DomainError):
    """The resource existed and is no longer kept."""


class MediaExpired(Gone):
    def __init__(self, message_id: UUID) -> None:
        super().__init__(f"The media of message {message_id} is no longer kept (retention)")


class NotOnWhatsApp(NotFound):
    """The contact asked about has no WhatsApp account."""


class WebhookInactive(Conflict):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"Webhook {webhook_id} is inactive; activate it before redelivering")


class WebhookLimitReached(Conflict):
    def __init__(self, limit: int) -> None:
        super().__init__(f"This tenant has its {limit} webhooks already; delete one first")


class EventNotRetained(Conflict):
    def __init__(self, event_id: UUID) -> None:
        super().__init__(f"Event {event_id} is no longer retained on the bus and cannot be redelivered")


class InvalidField(DomainError):
    """A field of the request is refused; `field` names it (`to`, `media.url`, `file`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UrlRefused(InvalidField):
    """The egress policy refuses the URL; the message is its generic reason, never a resolver's text."""


class PayloadTooLarge(InvalidField):
    """A payload or upload is larger than allowed."""


class UnsupportedMediaType(InvalidField):
    """A media type the message type does not allow."""


class BodyTooLarge(PayloadTooLarge):
    def __init__(self, cap: int) -> None:
        super().__init__("body", f"the request body is larger than this route's {cap} bytes")


class Throttled(DomainError):
    """Refused for now; the client may retry after `retry_after` seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyAuthFailures(Throttled):
    def __init__(self, retry_after: int) -> None:
        detail = f"Too many failed authentications from this address; retry in {retry_after} s"
        super().__init__(detail, retry_after)


class SendQueueFull(Throttled):
    def __init__(self, max_queued: int, retry_after: int) -> None:
        super().__init__(
            f"The tenant has {max_queued} sends queued, its max_queued; retry once some have gone out",
            retry_after,
        )


class TooManyStreams(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"This tenant has {limit} event streams open already; close one first")


class Unavailable(DomainError):
    """A dependency is unavailable; the client may retry (after `retry_after` seconds)."""

    retry_after: float = 2.0


class DatabaseUnavailable(Unavailable):
    """PostgreSQL (or PgBouncer) is down, out of connections, or slower than ZAPHUB_DB_TIMEOUT."""

    retry_after = 5.0


class BusUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("The message bus is unavailable; nothing was changed, retry")


class CommandStreamFull(Unavailable):
    """JetStream refused the command: the command stream is at its limits."""

    retry_after = 5

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class HostUnavailable(Unavailable):
    """No session-host holds the session, or it did not answer usefully; answered with Retry-After."""


class RatelimiterUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("The ratelimiter did not answer; retry")


class CredentialsDisabled(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "This deployment issues no NATS credentials (ZAPHUB_NATS_ACCOUNT_SIGNING_SEED unset)"
        )
