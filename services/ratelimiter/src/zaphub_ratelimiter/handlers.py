"""The ratelimiter's request/reply subjects: decode the request, ask the limiter, answer.

Errors are answered, never raised: a malformed request gets a `RateLimitError` (and the NATS service
error headers) naming the problem, a grant log that does not answer gets `unavailable`.
"""

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Literal, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.ratelimit import (
    ERROR_CODE_HEADER,
    ERROR_HEADER,
    AcquireRequest,
    RateLimitError,
    ReleaseRequest,
    UsageRequest,
)
from zaphub_ratelimiter.grant_log import GrantLogUnavailable
from zaphub_ratelimiter.limiter import Limiter
from zaphub_runtime.codec import decode, encode
from zaphub_runtime.ratelimit_routes import QUEUE_SUBJECTS, Op
from zaphub_runtime.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_ratelimiter")

R = TypeVar("R", bound=BaseModel)
Handler = Callable[[Msg], Coroutine[None, None, None]]

# The NATS micro convention for service errors, so any client can tell an error from a reply.


@dataclass(frozen=True, slots=True)
class Replier:
    """Answers requests, naming this replica in a header so clients can come back to it."""

    nc: Client
    replica: str

    async def reply(self, msg: Msg, body: BaseModel, headers: dict[str, str] | None = None) -> None:
        if msg.reply:
            headers = {**(headers or {}), subjects.RATELIMIT_REPLICA_HEADER: self.replica}
            await self.nc.publish(msg.reply, encode(body), headers=headers)


async def _answer(
    out: Replier, msg: Msg, request_type: type[R], call: Callable[[R], Awaitable[BaseModel]], operation: Op
) -> None:
    with tracer.start_as_current_span(
        f"{QUEUE_SUBJECTS[operation]} process",  # one name whichever replica subject it came on
        context=extract_context(msg.headers),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": msg.subject,
            "zaphub.ratelimit.operation": operation,
        },
    ) as span:
        try:
            request = decode(request_type, msg.data)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
            )
            await _error(out, msg, "bad_request", 400, f"invalid {request_type.__name__}: {detail}")
            return
        try:
            reply = await call(request)
        except GrantLogUnavailable as exc:
            span.record_exception(exc)
            log.warning("grant log unavailable", extra={"fields": {"error": str(exc)}})
            await _error(out, msg, "unavailable", 503, f"grant log unavailable: {exc}")
            return
        await out.reply(msg, reply)


async def _error(
    out: Replier, msg: Msg, kind: Literal["bad_request", "unavailable"], code: int, detail: str
) -> None:
    body = RateLimitError(error=kind, detail=detail[:1000])
    headers = {ERROR_HEADER: body.detail.replace("\r", " ").replace("\n", " "), ERROR_CODE_HEADER: str(code)}
    await out.reply(msg, body, headers)


def handlers(limiter: Limiter, nc: Client, replica: str) -> dict[Op, Handler]:
    """Operation (`acquire`, `release`, `usage`) → handler; `app.py` subscribes each to the queue
    group's subject and to this replica's own."""
    out = Replier(nc, replica)

    async def acquire(msg: Msg) -> None:
        """Grant a tenant tokens in order, up to the first a window denies, and say when it frees."""
        await _answer(
            out, msg, AcquireRequest, lambda r: limiter.acquire(r.tenant_id, r.token_ids), "acquire"
        )

    async def release(msg: Msg) -> None:
        """Give back tokens whose messages were not sent."""
        await _answer(
            out, msg, ReleaseRequest, lambda r: limiter.release(r.tenant_id, r.token_ids), "release"
        )

    async def usage(msg: Msg) -> None:
        """How much of each window a tenant has used."""
        await _answer(out, msg, UsageRequest, lambda r: limiter.usage(r.tenant_id), "usage")

    return {"acquire": acquire, "release": release, "usage": usage}
