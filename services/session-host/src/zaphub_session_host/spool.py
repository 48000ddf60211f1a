"""The host's durable event spool: where events wait while NATS does not take them.

One append-only file of JSON lines per host (`<data_dir>/spool/<host_id>.jsonl`), fsync'd after each
append, read back in order. The publisher replays it once NATS answers again; every event keeps its
id, which is its `Nats-Msg-Id`, so a line published twice (sent, then the ack lost) is stored once.
Each file is held with an exclusive flock while its host runs; at start a host adopts the files
no live host holds (a host that died during an outage, named with its pid) and replays them first.
The file is emptied when everything in it is published. `full` says the spool holds `max_bytes` or
more: the host then stops taking from WhatsApp, which keeps what it has not delivered.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path

from zaphub_contracts.events import EventBase, parse_event
from zaphub_runtime.codec import encode

log = logging.getLogger(__name__)


class Spool:
    """Events in order on disk: `append`, then `peek` the oldest and `commit` those published."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lines: list[bytes] = []  # the file's unpublished lines, oldest first
        self._size = 0  # bytes of the file
        self._fd: int | None = None

    def open(self) -> None:
        """Open (creating) the file and read back what an earlier run left. Blocking: call in a thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._size = os.fstat(self._fd).st_size
        self._lines = _lines(self.path.read_bytes())
        for other in sorted(self.path.parent.glob("*.jsonl")):
            if other != self.path:
                self._adopt(other)
        if self._lines:
            log.warning("spool: %d events from an earlier run wait to be published", len(self._lines))

    def _adopt(self, other: Path) -> None:
        """Take over the lines of a spool no live host holds, then remove it."""
        try:
            fd = os.open(other, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # its host is alive
            lines = _lines(other.read_bytes())
            if lines:
                self._write(b"".join(line + b"\n" for line in lines))
                self._lines.extend(lines)
            with contextlib.suppress(FileNotFoundError):
                other.unlink()
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            if not self._lines:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def size(self) -> int:
        return self._size

    @property
    def full(self) -> bool:
        return self._size >= self.max_bytes

    async def append(self, events: list[EventBase]) -> None:
        """Write `events` after the others and fsync before returning."""
        if not events:
            return
        lines = [encode(e) for e in events]
        await asyncio.to_thread(self._write, b"".join(line + b"\n" for line in lines))
        self._lines.extend(lines)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise RuntimeError("Spool.open() was not called")
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self._size += len(data)

    def peek(self, count: int) -> list[EventBase]:
        """The oldest `count` events; a line that does not parse is dropped with a log line."""
        events: list[EventBase] = []
        while len(events) < min(count, len(self._lines)):
            try:
                events.append(parse_event(self._lines[len(events)]))
            except ValueError:
                log.error("spool: dropping a line that is not an event")
                self._lines.pop(len(events))
        return events

    async def commit(self, count: int) -> None:
        """The oldest `count` events are published; when none is left the file is emptied."""
        del self._lines[:count]
        if not self._lines and self._size:
            await asyncio.to_thread(self._truncate)

    def _truncate(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        self._size = 0


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1]:
        log.warning("spool: dropping a torn last line (the host died writing it)")
    return [line for line in lines[:-1] if line]
