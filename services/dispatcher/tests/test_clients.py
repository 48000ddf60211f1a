"""The dispatcher's ratelimiter client against a real NATS responder."""

from uuid import uuid4

import pytest
from nats.aio.msg import Msg

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.ratelimit import ERROR_CODE_HEADER, ERROR_HEADER, RateLimitError
from zaphub_dispatcher.clients import RateLimiterClient, RateLimiterUnavailable
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode

from .conftest import command


async def test_an_error_reply_of_the_ratelimiter_is_unavailable_with_its_detail(nats_url: str) -> None:
    """During a NATS leader election the ratelimiter answers with error headers and a RateLimitError
    body: the client reports that, not a validation error of the wrong reply type."""
    bus = await Bus.connect(nats_url, name="clients-test", source="/zaphub/dispatcher/test")
    error = RateLimitError(error="unavailable", detail="grant log unavailable: nats: timeout")

    async def answer(msg: Msg) -> None:
        headers = {ERROR_HEADER: error.detail, ERROR_CODE_HEADER: "503"}
        await bus.nc.publish(msg.reply, encode(error), headers=headers)

    for subject in (subjects.RATELIMIT_ACQUIRE, subjects.RATELIMIT_RELEASE):
        await bus.nc.subscribe(subject, cb=answer)
    client = RateLimiterClient(bus, timeout=2)
    commands: list[SendMessage] = [command(uuid4(), uuid4(), 1)]
    try:
        with pytest.raises(RateLimiterUnavailable, match="ratelimiter unavailable: grant log unavailable"):
            await client.acquire(commands)
        with pytest.raises(RateLimiterUnavailable, match="ratelimiter unavailable"):
            await client.release(commands)
    finally:
        await bus.close()
