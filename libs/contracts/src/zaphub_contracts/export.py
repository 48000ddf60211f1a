"""Generate the JSON Schemas and the AsyncAPI 3.0 document of the v1 bus contract from the models.

Everything is derived from the contracts: subject templates from the builders in `subjects`, streams and
consumers from `streams`, events from `EVENT_CLASSES`, host request bodies from `HostOp`. Each model is
named once, in `CHANNELS` or `BUCKET_VALUES`; the schema files are whatever those channels carry.

`python -m zaphub_contracts.export` writes them under libs/contracts/; `--check` only compares and exits 1
naming the files that drifted (CI and a test run the comparison).
"""

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from zaphub_contracts import sessions, streams, subjects
from zaphub_contracts.commands import SendMessage, SessionAction, SessionCommand
from zaphub_contracts.deadletters import DeadLetter
from zaphub_contracts.events import EVENT_CLASSES, EventBase
from zaphub_contracts.groups import CommandRateLimited, GroupCommand, GroupReply, GroupRequest
from zaphub_contracts.host import (
    BlocklistReply,
    BlocklistUpdate,
    ChatPresenceRequest,
    ContactReply,
    ContactRequest,
    ContactsCheckReply,
    ContactsCheckRequest,
    ContactsReply,
    HostError,
    HostOk,
    HostOp,
    InjectFault,
    MarkReadReply,
    MarkReadRequest,
    PairCodeRequest,
    PresenceRequest,
    SendRun,
    SendRunReply,
    SessionControl,
    Simulate,
)
from zaphub_contracts.ratelimit import (
    AcquireReply,
    AcquireRequest,
    GrantLogRecord,
    RateLimitError,
    RateLimits,
    ReleaseReply,
    ReleaseRequest,
    UsageReply,
    UsageRequest,
)
from zaphub_contracts.sessions import DesiredSession, HandedOver, HostInfo, Lease
from zaphub_contracts.webhooks import WebhookAttempt, WebhookConfig, WebhookDelivery, webhook_key

BASE_URL = "https://zaphub.dev/schemas/v1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ROOT = Path(__file__).resolve().parents[2]  # libs/contracts
ASYNCAPI_PATH = ROOT / "asyncapi.yaml"
SCHEMAS_DIR = ROOT / "schemas"
SCHEMA_MODE: Literal["serialization"] = "serialization"  # what producers put on the wire

# Placeholder ids: subjects are built by the real builders, then these tokens become {parameters}.
_TENANT, _SESSION, _WEBHOOK = UUID(int=1), UUID(int=2), UUID(int=3)
_PLACEHOLDERS = {str(_TENANT): "tenant_id", str(_SESSION): "session_id", str(_WEBHOOK): "webhook_id"}


@dataclass(frozen=True, slots=True)
class Message:
    """One model crossing the bus, written to `schemas/<group>/<name>.json`."""

    group: str
    name: str
    model: type[BaseModel]
    summary: str

    @property
    def path(self) -> Path:
        return SCHEMAS_DIR / self.group / f"{self.name}.json"

    @property
    def schema_id(self) -> str:
        return f"{BASE_URL}/{self.group}/{self.name}.json"

    @property
    def key(self) -> str:
        """Name of the message in the AsyncAPI components."""
        return f"{self.group}.{self.name}"


# Which NATS headers a message carries, by how it is published (see `_HEADERS`).
HeaderKind = Literal["command", "event", "dead_letter", "deduplicated", "traced", "ratelimit_reply"]


@dataclass(frozen=True, slots=True)
class Channel:
    """A subject pattern of `subjects`, the messages published on it and who talks on it."""

    id: str
    subject: str  # built by a `subjects` builder from placeholder tokens
    description: str
    messages: tuple[Message, ...]
    headers: HeaderKind
    action: Literal["send", "receive"] | None  # from a bus client's side; None = internal to ZapHub
    summary: str = ""
    replies: tuple[Message, ...] = ()
    reply_headers: HeaderKind = "traced"
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue: str | None = None  # queue group of the responders
    placeholders: dict[str, str] = field(default_factory=dict)  # token in `subject` -> parameter name

    @property
    def address(self) -> str:
        return _address(self.subject, self.placeholders)


def _address(subject: str, placeholders: dict[str, str] | None = None) -> str:
    """The AsyncAPI address of a subject built from placeholder tokens: `{tenant_id}` for the token."""
    names = {**_PLACEHOLDERS, **(placeholders or {})}
    return ".".join(f"{{{names[t]}}}" if t in names else t for t in subject.split("."))


def _concrete(address: str) -> str:
    """An address with each `{name}` turned into the token `name`, to match it against stream filters."""
    return re.sub(r"\{(\w+)\}", r"\1", address)


def _subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a trailing `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def _event_message(cls: type[EventBase]) -> Message:
    subject = _address(subjects.event(_TENANT, _SESSION, cls.short))
    summary = f"CloudEvents 1.0 envelope of type `{cls.model_fields['type'].default}` on `{subject}`"
    return Message("events", cls.short, cls, summary)


SEND_MESSAGE = Message("commands", "send_message", SendMessage, "Send one message")
GROUP_REPLY = Message(
    "host", "group_reply", GroupReply, "For `group`: the group(s), per-participant results or a link"
)
HOST_ERROR = Message(
    "host", "host_error", HostError, "The host could not do it; `reason` says whether to retry"
)
RATELIMIT_ERROR = Message("ratelimit", "error", RateLimitError, "The ratelimiter could not serve the request")
_HOST_BODIES: dict[HostOp, Message] = {
    HostOp.SEND: Message("host", "send_run", SendRun, "Hand a run of one session's send commands over"),
    HostOp.PAIR_CODE: Message("host", "pair_code_request", PairCodeRequest, "Ask a host for a pairing code"),
    HostOp.FAULT: Message("host", "inject_fault", InjectFault, "Simulator fault injection"),
    HostOp.SIMULATE: Message("host", "simulate", Simulate, "A simulated contact acts on a session"),
    HostOp.GROUP: Message("host", "group_request", GroupRequest, "One action on the session's groups"),
    HostOp.CONTACTS_CHECK: Message(
        "host", "contacts_check_request", ContactsCheckRequest, "Which numbers are on WhatsApp"
    ),
    HostOp.CONTACT_INFO: Message("host", "contact_request", ContactRequest, "One contact's profile"),
    HostOp.BLOCKLIST_UPDATE: Message("host", "blocklist_update", BlocklistUpdate, "Block or unblock a JID"),
    HostOp.PRESENCE: Message("host", "presence_request", PresenceRequest, "Show the account on or offline"),
    HostOp.CHAT_PRESENCE: Message(
        "host", "chat_presence_request", ChatPresenceRequest, "Show typing or recording in a chat"
    ),
    HostOp.MARK_READ: Message("host", "mark_read_request", MarkReadRequest, "Mark a chat's messages read"),
}
_SESSION_CONTROL = Message("host", "session_control", SessionControl, "Body of the ops without a payload")
# Every op has a body; an op added to HostOp without one here takes SessionControl, like logout.
HOST_REQUESTS: dict[HostOp, Message] = {op: _HOST_BODIES.get(op, _SESSION_CONTROL) for op in HostOp}
HOST_REPLIES = (
    Message("host", "host_ok", HostOk, "The host did what was asked"),
    HOST_ERROR,
    Message("host", "send_run_reply", SendRunReply, "For `send`: a result per command up to the first error"),
    GROUP_REPLY,
    Message("host", "contacts_check_reply", ContactsCheckReply, "For `contacts_check`: a result per number"),
    Message("host", "contact_reply", ContactReply, "For `contact_info`: the contact's profile"),
    Message("host", "contacts_reply", ContactsReply, "For `contacts_list`: the contacts the account knows"),
    Message("host", "blocklist_reply", BlocklistReply, "For `blocklist` and `blocklist_update`"),
    Message("host", "mark_read_reply", MarkReadReply, "For `mark_read`: the messages marked read"),
)
_IDS = {
    "tenant_id": {"description": "Tenant id (UUID)", "examples": [str(_TENANT)]},
    "session_id": {"description": "Session id (UUID)", "examples": [str(_SESSION)]},
    "webhook_id": {"description": "Webhook id (UUID)", "examples": [str(_WEBHOOK)]},
}


def _enum_param(description: str, values: Iterable[str]) -> dict[str, Any]:
    return {"description": description, "enum": sorted(values)}


RATELIMIT_MESSAGES: dict[str, tuple[Message, Message]] = {
    subjects.RATELIMIT_ACQUIRE: (
        Message("ratelimit", "acquire_request", AcquireRequest, "Ask for send tokens, in order"),
        Message("ratelimit", "acquire_reply", AcquireReply, "How many were granted, and when capacity frees"),
    ),
    subjects.RATELIMIT_RELEASE: (
        Message("ratelimit", "release_request", ReleaseRequest, "Give tokens back"),
        Message("ratelimit", "release_reply", ReleaseReply, "How many tokens were released"),
    ),
    subjects.RATELIMIT_USAGE: (
        Message("ratelimit", "usage_request", UsageRequest, "Ask for a tenant's window usage"),
        Message("ratelimit", "usage_reply", UsageReply, "Used and limit per window"),
    ),
}


def _ratelimit_channel(subject: str, request: Message, reply: Message) -> Channel:
    op = subject.rsplit(".", 1)[-1]
    return Channel(
        id=f"ratelimit{op.capitalize()}",
        subject=subject,
        description=(
            f"Rate-limit `{op}`: core NATS request/reply served by the ratelimiter replicas in one queue "
            "group; errors also carry the `Nats-Service-Error` and `Nats-Service-Error-Code` headers."
        ),
        messages=(request,),
        headers="traced",
        action="send",
        summary=f"Ask the ratelimiter to {op}",
        replies=(reply, RATELIMIT_ERROR),
        reply_headers="ratelimit_reply",
    )


CHANNELS: tuple[Channel, ...] = (
    Channel(
        id="sendCommand",
        subject=subjects.send_command(_TENANT, _SESSION),
        description=(
            "Send commands. The API publishes with `Nats-Msg-Id` = `message_id`, so a republished "
            "message is deduplicated; per-session order follows `seq`."
        ),
        messages=(SEND_MESSAGE,),
        headers="command",
        action="send",
        summary="Publish a send command",
    ),
    Channel(
        id="sessionCommand",
        subject=subjects.session_command(SessionAction.START, _TENANT, _SESSION),
        description="Session commands; the dispatcher routes each to the host that owns the session.",
        messages=(Message("commands", "session_command", SessionCommand, "Change a session"),),
        headers="command",
        action="send",
        summary="Publish a session command",
        placeholders={SessionAction.START.value: "action"},
        parameters={"action": _enum_param("What to do with the session", (a.value for a in SessionAction))},
    ),
    Channel(
        id="groupCommand",
        subject=subjects.group_command(_TENANT, _SESSION),
        description=(
            "Group writes (create, settings, picture, participants, invite revoke, join, leave, join "
            "requests); `Nats-Msg-Id` = `command_id`. The dispatcher carries them out one at a time per "
            "session, takes a rate-limit token for a create or an add, and answers on `reply_to`; a "
            "command past `expires_at` is dropped unanswered."
        ),
        messages=(Message("commands", "group_command", GroupCommand, "Change a session's groups"),),
        headers="command",
        action="send",
        summary="Publish a group write",
        replies=(
            GROUP_REPLY,
            HOST_ERROR,
            Message(
                "commands", "command_rate_limited", CommandRateLimited, "The tenant's rate limit had no room"
            ),
        ),
    ),
    Channel(
        id="events",
        subject=subjects.event(_TENANT, _SESSION, "{type}"),
        description=(
            "Events as CloudEvents 1.0 structured-mode JSON: `specversion`, `id`, `source`, "
            "`type` (`io.zaphub.<type>.v1`), `time`, `subject`, `datacontenttype`, `data`, and the "
            "extension attributes `tenantid` and `sessionid`. `Nats-Msg-Id` is the CloudEvent `id`, "
            "so a repeated emission is stored once. A tenant subscribes to "
            f"`{_address(subjects.tenant_events(_TENANT))}`."
        ),
        messages=tuple(_event_message(cls) for cls in EVENT_CLASSES),
        headers="event",
        action="receive",
        summary="Consume a tenant's events",
        parameters={"type": _enum_param("Event type, two tokens", (cls.short for cls in EVENT_CLASSES))},
    ),
    Channel(
        id="deadLetters",
        subject=subjects.dead_letter(_TENANT, _SESSION),
        description=(
            "Dead letters: a copy of what could not be processed, with the reason. The tokens read "
            f"`{subjects.UNKNOWN}` when the original subject could not be parsed."
        ),
        messages=(
            Message("deadletters", "dead_letter", DeadLetter, "A message that could not be processed"),
        ),
        headers="dead_letter",
        action="receive",
        summary="Inspect dead letters",
    ),
    Channel(
        id="hostRequest",
        subject=subjects.host(_SESSION, "{op}"),
        description=(
            "Core NATS request/reply answered only by the session-host holding the session's lease. "
            "Bodies by op: "
            + "; ".join(f"`{op.value}`: {body.model.__name__}" for op, body in HOST_REQUESTS.items())
            + "."
        ),
        messages=tuple({body.key: body for body in HOST_REQUESTS.values()}.values()),
        headers="traced",
        action="send",
        summary="Ask the owning host to act on a session",
        replies=HOST_REPLIES,
        parameters={"op": _enum_param("Host operation", (op.value for op in HostOp))},
    ),
    Channel(
        id="hostAny",
        subject=subjects.host_any("{op}"),
        description=" ".join((subjects.host_any.__doc__ or "").split())
        + " Same bodies and replies as hostRequest.",
        messages=tuple({body.key: body for body in HOST_REQUESTS.values()}.values()),
        headers="traced",
        action="send",
        summary="Ask any live session-host to act on a session no host runs",
        replies=HOST_REPLIES,
        parameters={"op": _enum_param("Host operation", (op.value for op in HostOp))},
        queue=subjects.HOST_ANY_QUEUE,
    ),
    *(_ratelimit_channel(subject, *pair) for subject, pair in RATELIMIT_MESSAGES.items()),
    Channel(
        id="ratelimitReplica",
        subject=subjects.ratelimit_replica("{replica}", "{op}"),
        description=(
            "The same operations, answered by one ratelimiter replica only (the one a reply's "
            f"`{subjects.RATELIMIT_REPLICA_HEADER}` header names). Clients send each tenant to one "
            "replica, chosen by rendezvous hashing over the replicas they have heard from, so that "
            "replica's window of the tenant is current; decisions are exact whichever replica answers."
        ),
        messages=tuple(request for request, _ in RATELIMIT_MESSAGES.values()),
        headers="traced",
        action="send",
        summary="Ask one ratelimiter replica",
        replies=(*(reply for _, reply in RATELIMIT_MESSAGES.values()), RATELIMIT_ERROR),
        reply_headers="ratelimit_reply",
        parameters={
            "replica": {"description": "Instance name of the replica, as its replies name it"},
            "op": _enum_param("Rate-limit operation", ("acquire", "release", "usage")),
        },
    ),
    Channel(
        id="ratelimitGrants",
        subject=subjects.ratelimit_grants(_TENANT),
        description="Per-tenant grant log, appended with compare-and-set; only the ratelimiter reads it.",
        messages=(Message("ratelimit", "grant_log_record", GrantLogRecord, "Grants and releases"),),
        headers="traced",
        action=None,
    ),
    Channel(
        id="webhookDeliveries",
        subject=subjects.webhook_delivery(_TENANT, _WEBHOOK),
        description=(
            "One event to POST to one webhook, first try; "
            "`Nats-Msg-Id` is `<delivery_id>:<first_attempt>`. Internal to ZapHub."
        ),
        messages=(Message("webhooks", "webhook_delivery", WebhookDelivery, "A queued webhook delivery"),),
        headers="deduplicated",
        action=None,
    ),
    Channel(
        id="webhookRetries",
        subject=subjects.webhook_retry(_TENANT, _WEBHOOK),
        description=(
            "A webhook delivery waiting for a later try (the next attempt after a failure, or put back "
            "without an attempt: tenant at its cap, breaker open) until `not_before`; `Nats-Msg-Id` is "
            "`<delivery_id>:<first_attempt>[:d<deferrals>]`. Internal to ZapHub."
        ),
        messages=(Message("webhooks", "webhook_delivery", WebhookDelivery, "A waiting webhook delivery"),),
        headers="deduplicated",
        action=None,
    ),
    Channel(
        id="webhookAttempts",
        subject=subjects.webhook_attempt(_TENANT, _WEBHOOK),
        description=(
            "The outcome of each webhook delivery attempt, projected into Postgres by the API; "
            "`Nats-Msg-Id` is `<delivery_id>:attempt:<n>`. Internal to ZapHub."
        ),
        messages=(Message("webhooks", "webhook_attempt", WebhookAttempt, "One delivery attempt"),),
        headers="deduplicated",
        action=None,
    ),
)

# Values of the KV buckets that have a contract model, with a key built from placeholder tokens.
BUCKET_VALUES: tuple[tuple[streams.BucketSpec, Message, str], ...] = (
    (
        streams.SESSIONS_BUCKET,
        Message("state", "desired_session", DesiredSession, "A session that should run"),
        sessions.desired_key(_TENANT, _SESSION),
    ),
    (streams.LEASES_BUCKET, Message("state", "lease", Lease, "Who owns a session"), str(_SESSION)),
    (streams.HOSTS_BUCKET, Message("state", "host_info", HostInfo, "A live session-host"), "{host_id}"),
    (streams.SENT_BUCKET, Message("state", "handed_over", HandedOver, "A sent message"), "{message_id}"),
    (
        streams.LIMITS_BUCKET,
        Message("ratelimit", "rate_limits", RateLimits, "A tenant's rate-limit override"),
        str(_TENANT),
    ),
    (
        streams.WEBHOOKS_BUCKET,
        Message("webhooks", "webhook_config", WebhookConfig, "A tenant's webhook"),
        webhook_key(_TENANT, _WEBHOOK),
    ),
)


def _stream_of(address: str) -> streams.StreamSpec | None:
    """The one stream that stores a channel's subjects, if any."""
    found = [s for s in streams.STREAMS if any(_subject_matches(p, _concrete(address)) for p in s.subjects)]
    if len(found) > 1:  # JetStream refuses overlapping streams; the specs must not declare them
        raise ValueError(f"{address} is captured by several streams: {[s.name for s in found]}")
    return found[0] if found else None


def all_messages() -> list[Message]:
    """Every model with a schema file, each once, in a stable order."""
    seen: dict[str, Message] = {}
    for channel in CHANNELS:
        for message in (*channel.messages, *channel.replies):
            seen.setdefault(message.key, message)
    for _, message, _ in BUCKET_VALUES:
        seen.setdefault(message.key, message)
    return sorted(seen.values(), key=lambda m: m.key)


def json_schema(message: Message) -> dict[str, Any]:
    """A standalone JSON Schema (draft 2020-12) of one model, with a stable `$id`."""
    schema = message.model.model_json_schema(mode=SCHEMA_MODE)
    schema.setdefault("description", message.summary + ".")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": message.schema_id, **schema}


def _asyncapi_schema(node: Any) -> Any:
    """Pydantic's OpenAPI-style discriminator object becomes AsyncAPI's plain property name."""
    if isinstance(node, dict):
        return {
            k: (v["propertyName"] if k == "discriminator" and isinstance(v, dict) else _asyncapi_schema(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def _header(description: str, *, required: bool = False) -> tuple[dict[str, str], bool]:
    return {"type": "string", "description": description}, required


# The NATS headers by kind of message, as zaphub_runtime.bus publishes them.
_HEADERS: dict[HeaderKind, dict[str, tuple[dict[str, str], bool]]] = {
    "command": {
        "Nats-Msg-Id": _header(
            "JetStream deduplication id: the message id for sends, `command_id` for group commands, unique"
            " per session command",
            required=True,
        )
    },
    "event": {
        "Nats-Msg-Id": _header("JetStream deduplication id, equal to the CloudEvent `id`", required=True),
        "Ce-Type": _header("The CloudEvent `type`, so consumers can route without parsing the body"),
    },
    "dead_letter": {"Nats-Msg-Id": _header("`dlq:<original subject>:<stream sequence>` when known")},
    "deduplicated": {
        "Nats-Msg-Id": _header("JetStream deduplication id; its shape is in the channel's description")
    },
    "traced": {},
    "ratelimit_reply": {
        "Nats-Service-Error": _header("Set on an error reply, with the error's detail"),
        "Nats-Service-Error-Code": _header("Numeric status of an error reply (400, 503)"),
        subjects.RATELIMIT_REPLICA_HEADER: _header(
            "The replica that answered; ask it directly next time (channel ratelimitReplica)"
        ),
    },
}
_TRACE_HEADERS = {
    "traceparent": _header("W3C trace context of the span that published the message"),
    "tracestate": _header("W3C vendor trace state, when present"),
}


def _headers_schema(kind: HeaderKind) -> dict[str, Any]:
    headers = {**_TRACE_HEADERS, **_HEADERS[kind]}
    schema: dict[str, Any] = {
        "type": "object",
        "description": "NATS message headers",
        "properties": {name: h for name, (h, _) in headers.items()},
    }
    required = sorted(name for name, (_, req) in headers.items() if req)
    if required:
        schema["required"] = required
    return schema


def _header_schema_name(kind: HeaderKind) -> str:
    return "".join(part.capitalize() for part in kind.split("_")) + "Headers"


def _stream_description(spec: streams.StreamSpec) -> str:
    age = f"kept {spec.max_age / streams.DAY:g} days" if spec.max_age else "kept until consumed"
    return (
        f"JetStream stream `{spec.name}` ({spec.retention.value} retention, {age}, "
        f"deduplication window {spec.duplicate_window:g} s): {spec.description}."
    )


def _stream_extension(spec: streams.StreamSpec, address: str) -> dict[str, Any]:
    """The stream and durable consumers behind a channel (AsyncAPI's NATS binding has no field for it)."""
    consumers = [
        {
            "durable": c.durable,
            "filter_subject": c.filter_subject,
            "ack_wait_seconds": c.ack_wait,
            "max_ack_pending": c.max_ack_pending,
            "description": c.description,
        }
        for c in streams.CONSUMERS
        if c.stream == spec.name and _subject_matches(c.filter_subject, _concrete(address))
    ]
    return {
        "name": spec.name,
        "subjects": list(spec.subjects),
        "retention": spec.retention.value,
        "max_age_seconds": spec.max_age,
        "duplicate_window_seconds": spec.duplicate_window,
        "description": spec.description,
        "consumers": consumers,
    }


def _component_schemas(messages: list[Message]) -> dict[str, Any]:
    """Payload and header schemas, with references between them inside the document."""
    models = [(m.model, SCHEMA_MODE) for m in messages] + [(EventBase, SCHEMA_MODE)]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = _asyncapi_schema(defs["$defs"])
    for m in messages:
        schemas[m.model.__name__].setdefault("description", m.summary + ".")
    schemas[EventBase.__name__]["description"] = (
        "The CloudEvents 1.0 envelope every event shares; each event type narrows `type` and `data`."
    )
    for kind in get_args(HeaderKind):
        schemas[_header_schema_name(kind)] = _headers_schema(kind)
    return schemas


def _messages(messages: Iterable[Message], headers: HeaderKind | None) -> dict[str, Any]:
    """Message objects of one channel: a message's headers depend on the channel it travels on."""
    out: dict[str, Any] = {}
    for m in messages:
        out[m.name] = {
            "name": m.name,
            "title": m.model.__name__,
            "summary": m.summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{m.model.__name__}"},
            "externalDocs": {"description": "Standalone JSON Schema (draft 2020-12)", "url": m.schema_id},
        }
        if headers is not None:
            out[m.name]["headers"] = {"$ref": f"#/components/schemas/{_header_schema_name(headers)}"}
    return out


def _parameters(address: str, given: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: given.get(name) or _IDS.get(name) or {"description": f"The {name.replace('_', ' ')}"}
        for name in re.findall(r"\{(\w+)\}", address)
    }


def _refs(channel_id: str, messages: Iterable[Message]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{channel_id}/messages/{m.name}"} for m in messages]


def _channels_and_operations() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel in CHANNELS:
        address = channel.address
        stream = _stream_of(address)
        body: dict[str, Any] = {
            "address": address,
            "title": channel.id,
            "messages": _messages(channel.messages, channel.headers),
            "parameters": _parameters(address, channel.parameters),
        }
        if stream is not None:
            body["description"] = f"{channel.description} {_stream_description(stream)}"
            body["x-jetstream-stream"] = _stream_extension(stream, address)
        else:
            body["description"] = f"{channel.description} Core NATS, not stored in a stream."
        channels[channel.id] = body
        if channel.action is None:
            continue
        operation: dict[str, Any] = {
            "action": channel.action,
            "channel": {"$ref": f"#/channels/{channel.id}"},
            "summary": channel.summary,
            "messages": _refs(channel.id, channel.messages),
        }
        if channel.replies:
            reply_id = f"{channel.id}Reply"
            channels[reply_id] = {
                "address": None,
                "title": reply_id,
                "description": f"The requester's reply inbox (`_INBOX.>`) for {channel.id}.",
                "messages": _messages(channel.replies, channel.reply_headers),
            }
            operation["reply"] = {
                "channel": {"$ref": f"#/channels/{reply_id}"},
                "messages": _refs(reply_id, channel.replies),
            }
        if channel.queue is not None:
            operation["bindings"] = {"nats": {"queue": channel.queue, "bindingVersion": "0.1.0"}}
        operations[f"{channel.action}_{channel.id}"] = operation
    for bucket, message, key in BUCKET_VALUES:
        channel_id = "kv" + "".join(part.capitalize() for part in bucket.name.split("_"))
        address = f"$KV.{bucket.name}.{_address(key)}"
        ttl = "per-key TTL" if bucket.per_key_ttl else (f"TTL {bucket.ttl:g} s" if bucket.ttl else "no TTL")
        channels[channel_id] = {
            "address": address,
            "title": channel_id,
            "description": f"Key-value bucket `{bucket.name}` ({ttl}): {bucket.description}.",
            "parameters": _parameters(address, {}),
            "messages": _messages((message,), None),
        }
    return channels, operations


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: a channel per subject pattern, messages and schemas from the models."""
    channels, operations = _channels_and_operations()
    return {
        "asyncapi": "3.0.0",
        "id": "urn:zaphub:bus:v1",
        "info": {
            "title": "ZapHub bus contract",
            "version": "1.0.0",
            "description": (
                "Commands, CloudEvents and request/reply subjects of ZapHub v1 on NATS JetStream, "
                "generated from libs/contracts (`just schemas`). Operations are written from the side "
                "of a bus client: it sends commands and requests and receives events and dead letters. "
                "v1 only grows by optional fields; consumers must ignore fields they do not know. "
                f"Standalone JSON Schemas (draft 2020-12) live under {BASE_URL}/."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "NATS with JetStream; production runs a three-node cluster with R3 streams.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _component_schemas(all_messages())},
    }


def _dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _dump_yaml(data: Any) -> str:
    # Imported here: PyYAML is the `export` extra, so the services that import the contracts do without it.
    import yaml

    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, width=110)


def render() -> dict[Path, str]:
    """Every generated file, by path, as it should be on disk."""
    files = {m.path: _dump_json(json_schema(m)) for m in all_messages()}
    files[ASYNCAPI_PATH] = _dump_yaml(asyncapi())
    return files


def stale_files(files: dict[Path, str]) -> Iterator[Path]:
    """Generated files missing or different on disk, and schema files no model produces any more."""
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            yield path
    yield from sorted(p for p in SCHEMAS_DIR.rglob("*.json") if p not in files)


def drifted() -> list[Path]:
    return list(stale_files(render()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zaphub_contracts.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when files drifted")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = list(stale_files(files))
        for path in stale:
            print(f"drifted: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run `just schemas` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    for path in stale_files(files):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
