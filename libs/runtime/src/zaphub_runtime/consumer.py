"""The pull-consumer loop every JetStream consumer runs: fetch batches, hand them over, survive NATS
restarts, and survive the handler.

Acking is the handler's business, but a handler that raises never ends the loop: the error is
logged and counted, the batch is handled again one message at a time so its good messages go
through, the one that raises is NAK'd with a delay (JetStream delivers it again) or, once it has
raised on `MAX_DELIVERIES` deliveries, dead-lettered, and fetching goes on. Decoding a message and
dead-lettering what cannot be decoded is `decode_or_dead_letter`.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast
from uuid import UUID

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.streams import ConsumerSpec
from zaphub_runtime.bus import Bus

__all__ = [
    "GIVEN_UP",
    "HANDLER_ERRORS",
    "MAX_DELIVERIES",
    "BatchHandler",
    "MessageHandler",
    "decode_or_dead_letter",
    "each_message",
    "nak_quietly",
    "parse_body",
    "routed",
    "run_pull_consumer",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
BatchHandler = Callable[[list[Msg]], Awaitable[None]]
MessageHandler = Callable[[Msg], Awaitable[None]]
Ensure = Callable[[], Awaitable[None]]

HANDLER_ERRORS = Counter(
    "zaphub_consumer_handler_errors",
    "Batches or messages whose handler raised; they are NAK'd and delivered again",
    ["consumer"],
)
GIVEN_UP = Counter(
    "zaphub_consumer_given_up",
    "Messages dead-lettered because their handler raised on every delivery",
    ["consumer"],
)
RETRY_DELAY = 1.0  # seconds before JetStream delivers a message whose handler raised
# A message its handler has raised on this many deliveries is taken for poison (a bug meeting this
# data) and dead-lettered, so the consumer stops spending a fetch slot on it every second forever.
# Counted by JetStream (num_delivered), so every replica agrees; it includes the deliveries a handler
# NAK'd on purpose, which errs towards giving up sooner on a message that also raises.
MAX_DELIVERIES = 5


async def nak_quietly(msg: Msg, delay: float = RETRY_DELAY) -> None:
    """NAK unless it was already acked or the connection is gone (the ack wait then redelivers it)."""
    with contextlib.suppress(Exception):
        await msg.nak(delay=delay)


def _not_the_messages_fault(exc: Exception) -> bool:
    """NATS or the network being away: retried for as long as it takes, never counted against the
    message (the handlers catch their own database errors)."""
    return isinstance(exc, nats.errors.Error | OSError | TimeoutError)


async def _guarded(bus: Bus, consumer: str, msgs: list[Msg], handle: BatchHandler) -> None:
    """`handle(msgs)`, owning what it raises: a batch that fails with an error of its own is handled
    again one message at a time, so only the message that raises is held back; a lone message is
    NAK'd, or dead-lettered once it has raised on `MAX_DELIVERIES` deliveries."""
    try:
        await handle(msgs)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        HANDLER_ERRORS.labels(consumer).inc()
        if len(msgs) > 1 and not _not_the_messages_fault(exc):
            log.exception("consumer %s: handler failed on a batch of %d; one at a time", consumer, len(msgs))
            for msg in msgs:
                if not msg.is_acked:  # the handler settled it before it raised
                    await _guarded(bus, consumer, [msg], handle)
            return
        log.exception("consumer %s: handler failed on %d message(s)", consumer, len(msgs))
        for msg in msgs:
            if msg.is_acked:
                continue
            if _not_the_messages_fault(exc) or _deliveries(msg) < MAX_DELIVERIES:
                await nak_quietly(msg)
            else:
                await _give_up(bus, consumer, msg, exc)


def _deliveries(msg: Msg) -> int:
    return msg.metadata.num_delivered or 1


async def _give_up(bus: Bus, consumer: str, msg: Msg, exc: Exception) -> None:
    """Dead-letter and ack a message its handler keeps failing on; should that fail too, NAK it."""
    detail = f"handler raised on {_deliveries(msg)} deliveries: {exc.__class__.__name__}: {exc}"
    try:
        await bus.dead_letter(
            msg, FailureReason.ATTEMPTS_EXHAUSTED, detail, component=consumer, attempts=_deliveries(msg)
        )
        await msg.ack()
    except Exception:
        log.warning("consumer %s: could not dead-letter a failing message; NAK'd", consumer, exc_info=True)
        await nak_quietly(msg)
        return
    GIVEN_UP.labels(consumer).inc()


def each_message(bus: Bus, consumer: str, handle: MessageHandler) -> BatchHandler:
    """A batch handler that runs `handle` on each message, so one message's failure NAKs (or
    dead-letters) only it, never one the handler already took."""

    async def handle_batch(msgs: list[Msg]) -> None:
        for msg in msgs:
            await _guarded(bus, consumer, [msg], lambda one: handle(one[0]))

    return handle_batch


class _Routed(Protocol):
    @property
    def tenant_id(self) -> UUID: ...
    @property
    def session_id(self) -> UUID: ...


R = TypeVar("R", bound=_Routed)


def routed(model: type[R]) -> Callable[[Msg], R]:
    """A parser of a tenant's command that also checks its subject names the same tenant and session."""

    def parse(msg: Msg) -> R:
        command = model.model_validate_json(msg.data)  # type: ignore[attr-defined]
        where = subjects.parse(msg.subject)
        if (where.tenant_id, where.session_id) != (command.tenant_id, command.session_id):
            raise ValueError("subject and body name different sessions")
        return cast(R, command)

    return parse


def parse_body(model: type[M]) -> Callable[[Msg], M]:
    """A parser of a message's body as `model`."""
    return lambda msg: model.model_validate_json(msg.data)


async def decode_or_dead_letter(
    bus: Bus,
    msg: Msg,
    parse: Callable[[Msg], T],
    component: str,
    route: tuple[str, str] | None = None,
    at_turn: Callable[[Msg], Awaitable[bool]] | None = None,
) -> T | None:
    """`parse(msg)`, or None once a message that cannot be parsed has been dead-lettered with the
    reason and acked. A failure to dead-letter raises, so the loop NAKs and nothing is lost.

    `at_turn`, when given, is asked first whether an unparsable message goes now; False means it
    handed the message back to come again (an ordered stream whose earlier message is still open)."""
    try:
        return parse(msg)
    except (ValidationError, ValueError) as exc:
        if at_turn is not None and not await at_turn(msg):
            return None
        await bus.dead_letter(
            msg, FailureReason.MALFORMED_COMMAND, str(exc), component=component, route=route
        )
        await msg.ack()
        return None


async def run_pull_consumer(
    bus: Bus,
    spec: ConsumerSpec,
    handle: BatchHandler,
    stop: asyncio.Event,
    batch: int = 64,
    wait: float = 1.0,
    ensure: Ensure | None = None,
) -> None:
    """Fetch from the durable consumer until `stop` is set; `ensure` creates or updates it before each
    bind (by default, to `spec`)."""
    sub: JetStreamContext.PullSubscription | None = None
    try:
        while not stop.is_set():
            try:
                if sub is None:
                    await (ensure() if ensure is not None else bus.ensure_consumer(spec))
                    sub = await bus.js.pull_subscribe_bind(spec.durable, stream=spec.stream)
                msgs = await sub.fetch(batch, timeout=wait)
            except (FetchTimeoutError, TimeoutError):
                continue
            except (nats.errors.Error, OSError) as exc:
                # NATS restarting or the consumer not there yet: wait and rebind.
                log.warning("consumer %s: %s; retrying", spec.durable, exc.__class__.__name__)
                sub = None
                await asyncio.sleep(0.5)
                continue
            await _guarded(bus, spec.durable, msgs, handle)
    finally:
        if sub is not None:
            # An idle pull subscription would hold the connection's drain until its timeout.
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
