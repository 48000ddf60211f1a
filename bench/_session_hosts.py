"""Shared by the session benchmarks: one nats-server and session-host processes on the simulator.

Hosts run as real `zaphub-session-host` processes (what production runs), sessions are asked for by
writing desired keys to KV (what the dispatcher does), and outcomes are read from the events.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from zaphub_contracts import subjects
from zaphub_contracts.events import parse_event
from zaphub_contracts.sessions import DesiredSession, HostInfo
from zaphub_contracts.streams import HOSTS_BUCKET, SESSIONS_BUCKET
from zaphub_devstack.nats import EmbeddedNats
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode

HOST_BIN = Path(sys.executable).parent / "zaphub-session-host"


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[rank]


class Lab:
    """A temp dir, a nats-server, host processes and a client that sees every event."""

    def __init__(self, **host_env: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="zaphub-bench-"))
        self.nats = EmbeddedNats(self.dir / "nats")
        self.host_env = host_env
        self.hosts: dict[str, subprocess.Popen[bytes]] = {}
        self.connected: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # sid -> (t, host, jid)
        self.qrs: dict[str, int] = defaultdict(int)
        self.bus: Bus | None = None
        self._nc: Client | None = None

    async def __aenter__(self) -> "Lab":
        await self.nats.start()
        self.bus = await Bus.connect(self.nats.url, name="bench", source="/bench")
        await self.bus.ensure_streams()
        self._nc = await nats.connect(self.nats.url)
        await self._nc.subscribe(subjects.EVT_ALL, cb=self._on_event)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name in list(self.hosts):
            self.stop_host(name)
        if self._nc is not None:
            await self._nc.close()
        if self.bus is not None:
            await self.bus.close()
        await self.nats.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _on_event(self, msg: Msg) -> None:
        event = parse_event(msg.data)
        sid = str(event.sessionid)
        if event.short == "session.connected":
            self.connected[sid].append((time.monotonic(), event.data.host_id, event.data.jid))
        elif event.short == "session.qr":
            self.qrs[sid] += 1

    def spawn_host(self, name: str, **env: str) -> int:
        full = {
            **os.environ,
            "ZAPHUB_NATS_URL": self.nats.url,
            "ZAPHUB_DATA_DIR": str(self.dir / "data"),
            "ZAPHUB_INSTANCE_ID": name,
            "ZAPHUB_TRANSPORT": "sim",
            "ZAPHUB_SIM_PAIR_DELAY": "0.05",
            "ZAPHUB_LOG_LEVEL": "WARNING",
            **self.host_env,
            **env,
        }
        log = (self.dir / f"{name}.log").open("ab")
        self.hosts[name] = subprocess.Popen([str(HOST_BIN)], env=full, stdout=log, stderr=subprocess.STDOUT)
        return self.hosts[name].pid

    def kill_host(self, name: str) -> None:
        proc = self.hosts.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_host(self, name: str) -> None:
        proc = self.hosts.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def live_hosts(self) -> dict[str, HostInfo]:
        assert self.bus is not None
        kv = await self.bus.kv(HOSTS_BUCKET)
        out: dict[str, HostInfo] = {}
        try:
            keys = await kv.keys()
        except Exception:
            return out
        for key in keys:
            try:
                entry = await kv.get(key)
            except Exception:
                continue
            if entry.value:
                out[key] = HostInfo.model_validate_json(entry.value)
        return out

    async def wait_host(self, name: str, timeout: float = 120.0) -> None:
        """Until the host's heartbeat is in KV (it is up and reconciling)."""
        deadline = time.monotonic() + timeout
        while name not in await self.live_hosts():
            proc = self.hosts[name]
            if proc.poll() is not None:
                raise RuntimeError(f"host {name} exited with {proc.returncode}; see {self.dir / name}.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"host {name} did not register within {timeout} s")
            await asyncio.sleep(0.1)

    async def desire(self, count: int) -> list[str]:
        assert self.bus is not None
        kv = await self.bus.kv(SESSIONS_BUCKET)
        tenant = uuid.uuid4()
        ids = [uuid.uuid4() for _ in range(count)]
        for i in range(0, count, 200):
            await asyncio.gather(
                *(
                    kv.put(
                        f"{tenant}.{sid}",
                        encode(
                            DesiredSession(
                                tenant_id=tenant, session_id=sid, name="bench", requested_at=datetime.now(UTC)
                            )
                        ),
                    )
                    for sid in ids[i : i + 200]
                )
            )
        return [str(s) for s in ids]

    async def wait_connected(
        self, ids: list[str], since: float = 0.0, timeout: float = 600.0, not_on: str | None = None
    ) -> dict[str, tuple[float, str, str]]:
        """Each session's first session.connected after `since` (on a host other than `not_on`)."""
        deadline = time.monotonic() + timeout
        found: dict[str, tuple[float, str, str]] = {}
        while True:
            for sid in ids:
                if sid in found:
                    continue
                for t, host, jid in self.connected.get(sid, ()):
                    if t >= since and host != not_on:
                        found[sid] = (t, host, jid)
                        break
            if len(found) == len(ids):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids) - len(found)} of {len(ids)} sessions not connected")
            await asyncio.sleep(0.05)
