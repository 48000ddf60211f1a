"""A pull-consumer loop shared by the dispatcher and the projector: fetch batches, hand them over,
survive NATS restarts; acking is the handler's business."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError

from zaphub_contracts.streams import ConsumerSpec
from zaphub_runtime.bus import Bus

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
Ensure = Callable[[], Awaitable[None]]


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
            await handle(msgs)
    finally:
        if sub is not None:
            # An idle pull subscription would hold the connection's drain until its timeout.
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
