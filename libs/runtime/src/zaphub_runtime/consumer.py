"""The pull-consumer loop every JetStream consumer runs: fetch batches, hand them over, survive NATS
restarts, and survive the handler.

Acking is the handler's business, but a handler that raises never ends the loop: the batch's
messages are NAK'd with a delay (JetStream delivers them again), the error is logged and counted,
and fetching goes on. Decoding a message and dead-lettering what cannot be decoded is `decode_or_dead_letter`.
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
    "HANDLER_ERRORS",
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
RETRY_DELAY = 1.0  # seconds before JetStream delivers a message whose handler raised


async def nak_quietly(msg: Msg, delay: float = RETRY_DELAY) -> None:
    """NAK unless it was already acked or the connection is gone (the ack wait then redelivers it)."""
    with contextlib.suppress(Exception):
        await msg.nak(delay=delay)


async def _guarded(consumer: str, msgs: list[Msg], handle: BatchHandler) -> None:
    try:
        await handle(msgs)
    except asyncio.CancelledError:
        raise
    except Exception:
        HANDLER_ERRORS.labels(consumer).inc()
        log.exception(
            "consumer %s: handler failed on a batch of %d; NAK'd for redelivery", consumer, len(msgs)
        )
        for msg in msgs:
            await nak_quietly(msg)


def each_message(consumer: str, handle: MessageHandler) -> BatchHandler:
    """A batch handler that runs `handle` on each message, so one message's failure NAKs only it."""

    async def handle_batch(msgs: list[Msg]) -> None:
        for msg in msgs:
            await _guarded(consumer, [msg], lambda one: handle(one[0]))

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
) -> T | None:
    """`parse(msg)`, or None once a message that cannot be parsed has been dead-lettered with the
    reason and acked. A failure to dead-letter raises, so the loop NAKs and nothing is lost."""
    try:
        return parse(msg)
    except (ValidationError, ValueError) as exc:
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
            await _guarded(spec.durable, msgs, handle)
    finally:
        if sub is not None:
            # An idle pull subscription would hold the connection's drain until its timeout.
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
