"""Where a child process's output goes: a log file, or line by line into a callback."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import IO

LineSink = Callable[[str], None]
Output = Path | LineSink
STREAM_LIMIT = 1 << 20  # per-line buffer of piped children; longer lines are dropped


def open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab", buffering=0)


async def pump_lines(stream: asyncio.StreamReader, sink: LineSink) -> None:
    """Forward every line until EOF; undecodable bytes are replaced, never fatal."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # longer than the reader's limit: asyncio already dropped it
            sink("[line too long, dropped]")
            continue
        if not raw:
            return
        sink(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
