"""The event publisher's durable spool: while NATS does not take events they go to disk in order,
are replayed in order once it does, survive a restart, and a full spool pauses the sessions."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

from zaphub_contracts.events import EventBase, SessionDisconnected, SessionDisconnectedData
from zaphub_runtime.bus import Bus
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.spool import Spool

TENANT, SESSION = uuid4(), uuid4()


def event(n: int) -> EventBase:
    return SessionDisconnected(
        id=uuid4(),
        source="/test",
        time=datetime.now(UTC),
        tenantid=TENANT,
        sessionid=SESSION,
        data=SessionDisconnectedData(reason=f"e{n}"),
    )


class FlakyBus:
    """Stands in for the bus: refuses every publish while `down`, records the stored ones."""

    def __init__(self) -> None:
        self.down = True
        self.stored: list[str] = []

    async def publish_event(self, event: EventBase, timeout: float = 5.0) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise TimeoutError("nats away")
        if str(event.id) not in self.stored:  # JetStream drops a repeated Nats-Msg-Id
            self.stored.append(str(event.id))


async def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_events_wait_on_disk_while_nats_is_away_and_arrive_once_in_order(tmp_path: Path) -> None:
    """Events emitted during an outage are fsync'd to the spool; a full spool pauses, and once NATS
    answers every event is stored once, in order, the spool file is empty and the sessions resume."""
    bus = FlakyBus()
    spool = Spool(tmp_path / "spool" / "h1.jsonl", max_bytes=2000)
    await asyncio.to_thread(spool.open)
    calls: list[str] = []

    async def on_full() -> None:
        calls.append("pause")

    async def on_drained() -> None:
        calls.append("resume")

    publisher = EventPublisher(cast(Bus, bus), spool, on_full=on_full, on_drained=on_drained)
    publisher.start()
    events = [event(n) for n in range(40)]
    for e in events[:20]:
        publisher.emit(e)
    await eventually(lambda: len(spool) >= 20)
    for e in events[20:]:
        publisher.emit(e)
    await eventually(lambda: len(spool) == 40)
    assert spool.path.stat().st_size == spool.size >= 2000 and calls == ["pause"]
    bus.down = False
    await publisher.flush(10)
    assert bus.stored == [str(e.id) for e in events]
    assert calls == ["pause", "resume"] and spool.path.stat().st_size == 0
    await publisher.close(1)
    spool.close()
    assert not spool.path.exists()


async def test_a_spool_left_by_a_dead_host_is_adopted_and_replayed_first(tmp_path: Path) -> None:
    """A host that died during an outage left its spool; the next host on the data dir replays it
    before its own events, and removes it."""
    dead = Spool(tmp_path / "spool" / "h-old.jsonl", max_bytes=10**6)
    await asyncio.to_thread(dead.open)
    old = [event(n) for n in range(3)]
    await dead.append(old)
    dead.close()  # its flock goes with it, as with a process that died
    assert dead.path.exists()

    bus = FlakyBus()
    bus.down = False
    spool = Spool(tmp_path / "spool" / "h-new.jsonl", max_bytes=10**6)
    await asyncio.to_thread(spool.open)
    assert len(spool) == 3 and not dead.path.exists()
    publisher = EventPublisher(cast(Bus, bus), spool)
    publisher.start()
    new = event(9)
    publisher.emit(new)
    await publisher.flush(10)
    assert bus.stored == [str(e.id) for e in [*old, new]]
    await publisher.close(1)
    spool.close()


async def test_a_live_hosts_spool_is_not_taken(tmp_path: Path) -> None:
    """Two hosts on one data dir: each keeps its own spool."""
    first = Spool(tmp_path / "h1.jsonl", max_bytes=10**6)
    await asyncio.to_thread(first.open)
    await first.append([event(1)])
    second = Spool(tmp_path / "h2.jsonl", max_bytes=10**6)
    await asyncio.to_thread(second.open)
    assert (len(first), len(second)) == (1, 0)
    first.close()
    second.close()
