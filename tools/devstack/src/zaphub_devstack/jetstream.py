"""What a JetStream cluster says about itself: which node leads a stream, and what each node stores.

Leaders come from `$JS.API.STREAM.INFO` (any node answers for the cluster); a node's own copy of a
stream from its monitoring endpoint (`/jsz?streams=true`), so a restarted node can be seen catching up.
"""

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client

# Loopback only: never through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def kv_stream(bucket: str) -> str:
    """The stream a KV bucket lives in."""
    return f"KV_{bucket}"


async def stream_leader(nc: Client, stream: str, within: float = 30.0) -> str:
    """The server name (`n2`) leading `stream`; waits while an election is under way."""
    js = nc.jetstream(timeout=2)
    deadline = time.monotonic() + within
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader:
                return info.cluster.leader
        except (nats.errors.Error, TimeoutError):
            pass  # no leader to answer yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader for {stream} within {within} s")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class LocalStream:
    """One node's copy of a stream."""

    name: str
    messages: int
    last_seq: int
    leader: str


def _local_streams(monitor_url: str) -> dict[str, LocalStream]:
    with _DIRECT.open(f"{monitor_url}/jsz?streams=true", timeout=5) as response:
        report = json.load(response)
    found = {}
    for account in report.get("account_details", []):
        for stream in account.get("stream_detail", []):
            state = stream.get("state", {})
            found[stream["name"]] = LocalStream(
                name=stream["name"],
                messages=int(state.get("messages", 0)),
                last_seq=int(state.get("last_seq", 0)),
                leader=str(stream.get("cluster", {}).get("leader", "")),
            )
    return found


async def local_streams(monitor_url: str) -> dict[str, LocalStream]:
    """Stream name to what the node behind `monitor_url` holds of it."""
    return await asyncio.to_thread(_local_streams, monitor_url)
