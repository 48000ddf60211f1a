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


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"Webhook {webhook_id} does not exist")


class DeliveryNotFound(NotFound):
    def __init__(self, webhook_id: UUID, delivery_id: UUID) -> None:
        super().__init__(f"Delivery {delivery_id} of webhook {webhook_id} does not exist")


class Conflict(DomainError):
    """The request conflicts with the resource's current state."""


class IdempotencyKeyReused(Conflict):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used for a different request")


class IdempotencyKeyInFlight(Conflict):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is in progress; retry")


class AlreadyPaired(Conflict):
    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"Session {session_id} is already paired; log it out first to pair another number")


class CannotPair(Conflict):
    """The session-host refused: the session is logged out, gone from it, or its transport cannot pair."""


class SessionNotConnected(Conflict):
    """The session is not connected to WhatsApp now: a query or presence cannot be served."""

    def __init__(self, session_id: UUID, status: str) -> None:
        super().__init__(f"Session {session_id} is not connected to WhatsApp (status {status})")


class NotOnWhatsApp(NotFound):
    """The contact asked about has no WhatsApp account."""


class WebhookInactive(Conflict):
    def __init__(self, webhook_id: UUID) -> None:
        super().__init__(f"Webhook {webhook_id} is inactive; activate it before redelivering")


class EventNotRetained(Conflict):
    def __init__(self, event_id: UUID) -> None:
        super().__init__(f"Event {event_id} is no longer retained on the bus and cannot be redelivered")


class InvalidField(DomainError):
    """A field of the request is refused; `field` names it (`to`, `media.url`, `file`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PayloadTooLarge(InvalidField):
    """A payload or upload is larger than allowed."""


class UnsupportedMediaType(InvalidField):
    """A media type the message type does not allow."""


class Unavailable(DomainError):
    """A dependency is unavailable; the client may retry."""


class BusUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("The message bus is unavailable; nothing was changed, retry")


class HostUnavailable(Unavailable):
    """No session-host holds the session, or it did not answer usefully; answered with Retry-After."""

    retry_after = 2


class RatelimiterUnavailable(Unavailable):
    def __init__(self) -> None:
        super().__init__("The ratelimiter did not answer; retry")


class CredentialsDisabled(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "This deployment issues no NATS credentials (ZAPHUB_NATS_ACCOUNT_SIGNING_SEED unset)"
        )
