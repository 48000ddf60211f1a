"""Subject builders and parsers; no service writes a subject string by hand."""

from dataclasses import dataclass
from uuid import UUID

from zaphub_contracts.commands import SessionAction

ROOT = "zaphub.v1"
CMD_ALL = f"{ROOT}.cmd.>"
SEND_ALL = f"{ROOT}.cmd.message.send.>"
SESSION_CMD_ALL = f"{ROOT}.cmd.session.>"
GROUP_CMD_ALL = f"{ROOT}.cmd.group.>"
EVT_ALL = f"{ROOT}.evt.>"
# Inside the events stream, matched by no event (tenant tokens are UUIDs): a filter for "none yet".
NO_EVENTS = f"{ROOT}.evt.none.>"
DLQ_ALL = f"{ROOT}.dlq.>"
RATELIMIT_ACQUIRE = f"{ROOT}.ratelimit.acquire"
RATELIMIT_RELEASE = f"{ROOT}.ratelimit.release"
RATELIMIT_USAGE = f"{ROOT}.ratelimit.usage"
RATELIMIT_GRANTS_ALL = f"{ROOT}.rl.grant.>"
# Reply header naming the ratelimiter replica that answered, so clients can ask it directly next time.
RATELIMIT_REPLICA_HEADER = "Zaphub-Ratelimiter"
WEBHOOK_DELIVERY_ALL = f"{ROOT}.webhook.delivery.>"
WEBHOOK_ATTEMPT_ALL = f"{ROOT}.webhook.attempt.>"
# The simulated WhatsApp network between session-hosts: frames addressed to one number (the digits of
# a JID), `<kind>` "message", "receipt", "group" or "typing". Only the simulator transport uses them.
SIM_ALL = f"{ROOT}.sim.>"
# A simulated account's availability, told once to every host process (core NATS, outside ZAPHUB_SIM:
# presence is not kept, only the sessions online when it is sent see it).
SIM_PRESENCE = f"{ROOT}.simpresence"
# Deliveries waiting for a later try (a retry, a tenant at its cap, an open breaker), apart from new ones.
WEBHOOK_RETRY_ALL = f"{ROOT}.webhook.retry.>"
UNKNOWN = "unknown"  # stands for a tenant or session token that could not be read


class SubjectError(ValueError):
    """A subject that does not match the v1 contract."""


def send_command(tenant_id: UUID, session_id: UUID) -> str:
    return f"{ROOT}.cmd.message.send.{tenant_id}.{session_id}"


def parked_send(tenant_id: UUID, session_id: UUID, message_id: UUID) -> str:
    """A send command that waits (rate limit, backoff) as a JetStream message schedule on the CMD
    stream, outside every consumer; at its time the server publishes it to `send_command` again."""
    return f"{ROOT}.cmd.parked.{tenant_id}.{session_id}.{message_id}"


def session_command(action: SessionAction, tenant_id: UUID, session_id: UUID) -> str:
    return f"{ROOT}.cmd.session.{action.value}.{tenant_id}.{session_id}"


def group_command(tenant_id: UUID, session_id: UUID) -> str:
    return f"{ROOT}.cmd.group.{tenant_id}.{session_id}"


def event(tenant_id: UUID, session_id: UUID, short: str) -> str:
    return f"{ROOT}.evt.{tenant_id}.{session_id}.{short}"


def tenant_events(tenant_id: UUID) -> str:
    """Everything one tenant may subscribe to."""
    return f"{ROOT}.evt.{tenant_id}.>"


def dead_letter(tenant: UUID | str, session: UUID | str) -> str:
    return f"{ROOT}.dlq.{tenant}.{session}"


def host(session_id: UUID, op: str) -> str:
    return f"{ROOT}.host.{session_id}.{op}"


def sim(number: str, kind: str) -> str:
    """A frame of the simulated network to the account `number` (E.164 digits, no plus)."""
    return f"{ROOT}.sim.{number}.{kind}"


def sim_inbox(number: str) -> str:
    """Everything the simulated network holds for `number`."""
    return f"{ROOT}.sim.{number}.>"


HOST_ANY_QUEUE = "zaphub-session-hosts"


def host_any(op: str) -> str:
    """A host op any live session-host serves (queue group `HOST_ANY_QUEUE`), for sessions no host runs:
    `delete` removes the auth_data of a session nobody holds."""
    return f"{ROOT}.host.any.{op}"


def webhook_delivery(tenant_id: UUID, webhook_id: UUID) -> str:
    return f"{ROOT}.webhook.delivery.{tenant_id}.{webhook_id}"


def webhook_retry(tenant_id: UUID, webhook_id: UUID) -> str:
    return f"{ROOT}.webhook.retry.{tenant_id}.{webhook_id}"


def webhook_attempt(tenant_id: UUID, webhook_id: UUID) -> str:
    return f"{ROOT}.webhook.attempt.{tenant_id}.{webhook_id}"


def ratelimit_grants(tenant_id: UUID) -> str:
    return f"{ROOT}.rl.grant.{tenant_id}"


def ratelimit_replica(replica: str, op: str) -> str:
    """`acquire`, `release` or `usage` served by one ratelimiter replica only (it keeps that tenant warm)."""
    return f"{ROOT}.ratelimit.replica.{replica}.{op}"


def replica_token(name: str) -> str:
    """A process name made fit to be one subject token: no dots, wildcards or whitespace."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or UNKNOWN


@dataclass(frozen=True, slots=True)
class Routed:
    """The tenant and session tokens read from a command, event or dead-letter subject."""

    kind: str  # "send", "session.<action>", "group", "evt.<short>", "dlq"
    tenant_id: UUID
    session_id: UUID


def _uuid(token: str, subject: str) -> UUID:
    try:
        return UUID(token)
    except ValueError as exc:
        raise SubjectError(f"{subject!r}: {token!r} is not a UUID") from exc


def parse(subject: str) -> Routed:
    """Read a v1 command, event or dead-letter subject; raises SubjectError otherwise."""
    tokens = subject.split(".")
    if tokens[:2] != ["zaphub", "v1"] or len(tokens) < 5:
        raise SubjectError(f"{subject!r} is not a zaphub.v1 subject")
    rest = tokens[2:]
    match rest:
        case ["cmd", "message", "send", tenant, session]:
            return Routed("send", _uuid(tenant, subject), _uuid(session, subject))
        case ["cmd", "session", action, tenant, session]:
            return Routed(f"session.{action}", _uuid(tenant, subject), _uuid(session, subject))
        case ["cmd", "group", tenant, session]:
            return Routed("group", _uuid(tenant, subject), _uuid(session, subject))
        case ["evt", tenant, session, *short] if short:
            return Routed(f"evt.{'.'.join(short)}", _uuid(tenant, subject), _uuid(session, subject))
        case ["dlq", tenant, session]:
            return Routed("dlq", _uuid(tenant, subject), _uuid(session, subject))
    raise SubjectError(f"{subject!r} matches no v1 subject")


def tenant_session_tokens(subject: str) -> tuple[str, str]:
    """Best-effort tenant and session tokens of any subject, for dead-lettering what cannot be parsed."""
    try:
        routed = parse(subject)
    except SubjectError:
        return UNKNOWN, UNKNOWN
    return str(routed.tenant_id), str(routed.session_id)
