"""A command stream at its limits (an operator's `max_msgs` with `discard: new`) refuses a publish as
nats-server does: the API maps that refusal to 503 `command-stream-full` with Retry-After, any other
failed publish to the bus's own 503, and the stream keeps what it held."""

import nats
import nats.errors
import pytest
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError

from zaphub_api.commands import refusal
from zaphub_api.domain_errors import BusUnavailable, CommandStreamFull
from zaphub_api.errors import PROBLEMS


async def test_a_full_command_stream_answers_503_naming_it_and_keeps_what_it_held(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="FULL", subjects=["full.>"], max_msgs=1, discard=DiscardPolicy.NEW))
    await js.publish("full.a", b"accepted")
    with pytest.raises(APIError) as refused:
        await js.publish("full.b", b"one too many")
    held = (await js.stream_info("FULL")).state.messages
    await nc.close()

    mapped = refusal(refused.value)
    assert isinstance(mapped, CommandStreamFull)
    assert PROBLEMS[CommandStreamFull][:2] == (503, "command-stream-full")
    assert mapped.retry_after > 0
    assert held == 1
    assert isinstance(refusal(nats.errors.NoRespondersError()), BusUnavailable)
