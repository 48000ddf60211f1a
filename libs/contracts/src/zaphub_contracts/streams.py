"""JetStream streams, consumers and KV buckets of v1, declared once for every service and infra/."""

from dataclasses import dataclass, field
from enum import StrEnum

from zaphub_contracts import subjects

DAY = 86400.0


class Retention(StrEnum):
    LIMITS = "limits"
    WORK_QUEUE = "workqueue"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: Retention
    max_age: float = 0.0  # seconds, 0 = forever
    duplicate_window: float = 120.0
    allow_msg_ttl: bool = False
    max_msgs: int = 0  # 0 = unlimited
    max_bytes: int = 0  # 0 = unlimited
    # When full: refuse new messages (the publisher sees the refusal) rather than drop the oldest.
    discard_new: bool = False
    allow_msg_schedules: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    ack_wait: float = 30.0
    max_ack_pending: int = 1000
    description: str = ""


@dataclass(frozen=True, slots=True)
class BucketSpec:
    name: str
    history: int = 1
    ttl: float = 0.0  # bucket-wide max age in seconds, 0 = forever
    per_key_ttl: bool = False  # leases and heartbeats expire key by key
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)


CMD = StreamSpec(
    name="ZAPHUB_CMD",
    subjects=(subjects.CMD_ALL,),
    retention=Retention.WORK_QUEUE,
    # Long enough that the outbox sweeper's republish of a message is still deduplicated.
    duplicate_window=2 * 3600.0,
    # No stream limits here: NATS refuses message schedules on a `discard: new` stream, and limits with
    # `discard: old` would drop accepted commands. Per-tenant admission (`max_queued`) bounds it instead.
    # Sends that wait longer than a few seconds are parked as message schedules (subjects.parked_send).
    allow_msg_schedules=True,
    description="Commands: message sends, session actions and group writes (work queue)",
)
EVT = StreamSpec(
    name="ZAPHUB_EVT",
    subjects=(subjects.EVT_ALL,),
    retention=Retention.LIMITS,
    max_age=7 * DAY,
    description="CloudEvents of every tenant, kept for seven days",
)
DLQ = StreamSpec(
    name="ZAPHUB_DLQ",
    subjects=(subjects.DLQ_ALL,),
    retention=Retention.LIMITS,
    max_age=30 * DAY,
    description="Commands and events that could not be processed, with the reason",
)
RATELIMIT = StreamSpec(
    name="ZAPHUB_RATELIMIT",
    subjects=(subjects.RATELIMIT_GRANTS_ALL,),
    retention=Retention.LIMITS,
    # A day window plus a margin: older grants can no longer count against any window.
    max_age=DAY + 3600.0,
    description="Per-tenant log of rate-limit grants and releases (append with compare-and-set)",
)
WEBHOOKS = StreamSpec(
    name="ZAPHUB_WEBHOOKS",
    subjects=(subjects.WEBHOOK_DELIVERY_ALL, subjects.WEBHOOK_RETRY_ALL, subjects.WEBHOOK_ATTEMPT_ALL),
    retention=Retention.WORK_QUEUE,
    max_age=7 * DAY,  # a delivery nobody took in a week would no longer help its receiver
    description="Pending webhook deliveries, those waiting for a later try, and their attempt records",
)
STREAMS: tuple[StreamSpec, ...] = (CMD, EVT, DLQ, RATELIMIT, WEBHOOKS)
# Created by the simulator transport only (a neonize deployment never has it): what the simulated
# network holds for each linked number until that session is online to take it, like WhatsApp's
# servers do for an offline phone.
SIM = StreamSpec(
    name="ZAPHUB_SIM",
    subjects=(subjects.SIM_ALL,),
    retention=Retention.WORK_QUEUE,
    max_age=7 * DAY,
    description="Simulator network: frames per recipient number, taken when it is online",
)

SEND_CONSUMER = ConsumerSpec(
    stream=CMD.name,
    durable="dispatcher-send",
    filter_subject=subjects.SEND_ALL,
    # Short, because replicas mark held commands in progress: a crashed replica's commands return fast.
    ack_wait=10.0,
    # Only short waits stay pending (NAK with delay); longer ones are parked outside the consumer
    # (docs/delivery.md), so one tenant's queue cannot use up the pending allowance of everyone else.
    max_ack_pending=1_000_000,
    description="Dispatcher replicas share this pull consumer for message sends",
)
SESSION_CONSUMER = ConsumerSpec(
    stream=CMD.name,
    durable="dispatcher-session",
    filter_subject=subjects.SESSION_CMD_ALL,
    description="Dispatcher replicas share this pull consumer for session commands",
)
GROUP_CONSUMER = ConsumerSpec(
    stream=CMD.name,
    durable="dispatcher-group",
    filter_subject=subjects.GROUP_CMD_ALL,
    # Short, as for sends: held commands are marked in progress, a crashed replica's come back fast
    # (while their requester still waits).
    ack_wait=10.0,
    description="Dispatcher replicas share this pull consumer for group writes",
)
PROJECTOR_CONSUMER = ConsumerSpec(
    stream=EVT.name,
    durable="projector",
    filter_subject=subjects.EVT_ALL,
    ack_wait=30.0,
    max_ack_pending=5000,
    description="The API's projector keeps Postgres current from events",
)
WEBHOOK_EVENTS_CONSUMER = ConsumerSpec(
    stream=EVT.name,
    durable="webhooks",
    filter_subject=subjects.EVT_ALL,
    max_ack_pending=5000,
    # Narrowed at run time to the tenants with an active webhook (the dispatcher's webhook_events.py).
    description="The dispatcher's webhook worker queues one delivery per event and matching webhook",
)
WEBHOOK_DELIVERY_CONSUMER = ConsumerSpec(
    stream=WEBHOOKS.name,
    durable="webhook-deliveries",
    filter_subject=subjects.WEBHOOK_DELIVERY_ALL,
    ack_wait=60.0,  # longer than one POST's timeout
    max_ack_pending=2000,
    description="Dispatcher replicas share this pull consumer to POST new webhook deliveries",
)
WEBHOOK_RETRY_CONSUMER = ConsumerSpec(
    stream=WEBHOOKS.name,
    durable="webhook-retries",
    filter_subject=subjects.WEBHOOK_RETRY_ALL,
    ack_wait=60.0,
    # Waiting deliveries sit here NAK'd with their delay, apart from the new ones: however many one
    # tenant's failing endpoints pile up, the consumer of new deliveries keeps its whole window.
    max_ack_pending=1_000_000,
    description="Dispatcher replicas share this pull consumer for webhook deliveries waiting to be retried",
)
WEBHOOK_ATTEMPTS_CONSUMER = ConsumerSpec(
    stream=WEBHOOKS.name,
    durable="webhook-attempts",
    filter_subject=subjects.WEBHOOK_ATTEMPT_ALL,
    description="The API writes webhook delivery attempts to Postgres",
)
CONSUMERS: tuple[ConsumerSpec, ...] = (
    SEND_CONSUMER,
    SESSION_CONSUMER,
    GROUP_CONSUMER,
    PROJECTOR_CONSUMER,
    WEBHOOK_EVENTS_CONSUMER,
    WEBHOOK_DELIVERY_CONSUMER,
    WEBHOOK_RETRY_CONSUMER,
    WEBHOOK_ATTEMPTS_CONSUMER,
)

SESSIONS_BUCKET = BucketSpec(
    name="zaphub_sessions",
    description="Desired state: every session that should be running, keyed <tenant>.<session>",
)
LEASES_BUCKET = BucketSpec(
    name="zaphub_leases",
    per_key_ttl=True,
    description="Which host owns a session, keyed by session id; expires when the host stops refreshing",
)
HOSTS_BUCKET = BucketSpec(
    name="zaphub_hosts",
    per_key_ttl=True,
    description="Live session-hosts and their load, refreshed by heartbeat",
)
DISPATCH_BUCKET = BucketSpec(
    name="zaphub_dispatch",
    description="Per-session send cursor and per-message attempt counts of the dispatcher",
)
LIMITS_BUCKET = BucketSpec(
    name="zaphub_limits",
    description="Per-tenant rate-limit overrides, keyed by tenant id, written by the API",
)
SENT_BUCKET = BucketSpec(
    name="zaphub_sent",
    ttl=7 * DAY,
    description="Message ids already handed to WhatsApp, so a redelivered send is never sent twice",
)
WEBHOOKS_BUCKET = BucketSpec(
    name="zaphub_webhooks",
    description="Every tenant's webhooks keyed <tenant>.<webhook>, mirrored from Postgres by the API",
)
SIM_NUMBERS_BUCKET = BucketSpec(  # simulator transport only, like SIM
    name="zaphub_sim_numbers",
    description="Simulator network: the numbers linked to a simulated session, keyed by E.164 digits",
)
SIM_GROUPS_BUCKET = BucketSpec(  # simulator transport only, like SIM
    name="zaphub_sim_groups",
    description="Simulator network: its groups (members, roles, settings), keyed by the group's number",
)
BUCKETS: tuple[BucketSpec, ...] = (
    SESSIONS_BUCKET,
    SENT_BUCKET,
    LEASES_BUCKET,
    HOSTS_BUCKET,
    DISPATCH_BUCKET,
    LIMITS_BUCKET,
    WEBHOOKS_BUCKET,
)
