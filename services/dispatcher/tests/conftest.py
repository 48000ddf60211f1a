"""Helpers of the dispatcher's unit tests, which run on a real NATS with JetStream per test (`nats_url`,
from the devstack plugin): polling, and the acks and NAKs a consumer sends, as another client sees them.
"""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg


async def eventually(check: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.01)
    return result


@dataclass(frozen=True)
class Verdict:
    """What a consumer told JetStream about one delivery, as it crossed the wire."""

    stream_seq: int
    delivery: int  # the delivery it answers, from 1
    kind: str  # "ack", "nak", "progress" or "term"
    delay: float | None  # the NAK's redelivery delay in seconds; None for an immediate one
    at: float  # time.monotonic() when the observer saw it


def _verdict(subject: str, data: bytes) -> tuple[str, Verdict]:
    """The stream an ack subject names, and the verdict its body gives."""
    meta = Msg(_client=None, reply=subject).metadata  # type: ignore[arg-type]
    delay = None
    if data.startswith(Msg.Ack.Nak):
        kind = "nak"
        if args := data[len(Msg.Ack.Nak) :].strip():
            delay = json.loads(args)["delay"] / 1e9
    elif data == Msg.Ack.Progress:
        kind = "progress"
    elif data == Msg.Ack.Term:
        kind = "term"
    else:
        kind = "ack"  # an empty body, or +ACK
    return meta.stream, Verdict(meta.sequence.stream, meta.num_delivered, kind, delay, time.monotonic())


class Wire:
    """Every ack, NAK and in-progress the consumers of `stream` send, as another client sees them."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.verdicts: list[Verdict] = []

    async def listen(self, nc: Client) -> None:
        async def on_msg(msg: Msg) -> None:
            stream, verdict = _verdict(msg.subject, msg.data)
            if stream == self.stream:
                self.verdicts.append(verdict)

        await nc.subscribe("$JS.ACK.>", cb=on_msg)
        await nc.flush()

    def of(self, stream_seq: int, *kinds: str) -> list[Verdict]:
        """The verdicts on one stream message, of `kinds` (default: all but in-progress)."""
        wanted = kinds or ("ack", "nak", "term")
        return [v for v in self.verdicts if v.stream_seq == stream_seq and v.kind in wanted]
