"""Sessions survive their hosts: kill -9, SIGTERM drain, a full stack restart, and capacity limits,
on real processes with the simulator transport."""

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from e2e.client import Tenant, eventually, new_tenant
from nats.aio.msg import Msg

from zaphub_contracts import subjects
from zaphub_contracts.events import EventBase, parse_event
from zaphub_devstack.testing import Stack

pytestmark = pytest.mark.slow
FAILOVER_WITHIN = 10.0  # the promise: a dead host's sessions run elsewhere within 10 s
SIM = {"ZAPHUB_SIM_PAIR_DELAY": "0.3"}


class Seen:
    """Every event published while the test watches, with its arrival time."""

    def __init__(self) -> None:
        self.items: list[tuple[float, EventBase]] = []

    async def on_msg(self, msg: Msg) -> None:
        self.items.append((time.monotonic(), parse_event(msg.data)))

    def of(self, short: str, session_id: str, since: float = 0.0) -> list[EventBase]:
        return [
            e for t, e in self.items if t >= since and e.short == short and str(e.sessionid) == session_id
        ]


@asynccontextmanager
async def watching(stack: Stack) -> AsyncIterator[Seen]:
    seen = Seen()
    nc = await nats.connect(stack.nats_url)
    await nc.subscribe(subjects.EVT_ALL, cb=seen.on_msg)
    try:
        yield seen
    finally:
        await nc.close()


async def stored_events(stack: Stack, tenant_id: str) -> list[EventBase]:
    """The tenant's whole event history from the ZAPHUB_EVT stream."""
    nc = await nats.connect(stack.nats_url)
    events: list[EventBase] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.tenant_events(uuid.UUID(tenant_id)), ordered_consumer=True
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except TimeoutError:
                break
            events.append(parse_event(msg.data))
    finally:
        await nc.close()
    return events


async def hosts(http: httpx.AsyncClient, stack: Stack) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/hosts", headers={"Authorization": f"Bearer {stack.admin_key}"})
    assert response.status_code == 200, response.text
    return list(response.json())


async def placed(tenant: Tenant, sessions: list[dict[str, Any]]) -> dict[str, str]:
    """Session id -> the host the API says holds it."""
    out = {}
    for s in sessions:
        out[s["id"]] = (await tenant.session(s["id"]))["host"]
    return out


async def reconnected_elsewhere(
    seen: Seen, session_ids: list[str], since: float, within: float, not_on: str | None = None
) -> dict[str, EventBase]:
    """Wait until each session has a session.connected after `since` (on a host other than `not_on`)."""
    deadline = since + within
    found: dict[str, EventBase] = {}
    while len(found) < len(session_ids):
        for sid in session_ids:
            for event in seen.of("session.connected", sid, since):
                if not_on is None or event.data.host_id != not_on:
                    found[sid] = event
        if len(found) == len(session_ids):
            break
        missing = sorted(set(session_ids) - set(found))
        assert time.monotonic() < deadline, f"not connected again within {within} s: {missing}"
        await asyncio.sleep(0.05)
    return found


async def test_killed_host_sessions_reconnect_within_ten_seconds_with_same_jid(run_stack: Any) -> None:
    """kill -9 of the host holding sessions: they are connected again within 10 s, with their JIDs and
    without a new QR, on a live host; GET /hosts and GET /sessions/{id} show where they are."""
    stack: Stack = await run_stack(ZAPHUB_SESSION_HOSTS="2", **SIM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http, watching(stack) as seen:
        tenant = await new_tenant(http, stack.admin_key)
        sessions = [await tenant.connected_session(f"k{i}", timeout=60) for i in range(4)]
        jids = {s["id"]: s["jid"] for s in sessions}
        where = await placed(tenant, sessions)

        async def all_counted() -> dict[str, dict[str, Any]] | None:
            live = {h["host_id"]: h for h in await hosts(http, stack)}
            return live if sum(h["sessions"] for h in live.values()) == 4 else None

        live = await eventually(all_counted, 30, "GET /hosts to count the 4 sessions")
        assert set(where.values()) <= set(live)
        victim = Counter(where.values()).most_common(1)[0][0]
        moving = [sid for sid, host in where.items() if host == victim]

        killed_at = time.monotonic()
        stack.kill(victim)
        found = await reconnected_elsewhere(seen, moving, killed_at, FAILOVER_WITHIN)

        for sid, event in found.items():
            assert event.data.jid == jids[sid]
        assert not [e for sid in moving for e in seen.of("session.qr", sid, killed_at)]
        alive = {h["host_id"] for h in await hosts(http, stack)}
        for sid in moving:
            now = await tenant.session(sid)
            assert now["jid"] == jids[sid] and now["host"] in alive


async def test_sigterm_drain_moves_sessions_to_the_other_host(run_stack: Any) -> None:
    """SIGTERM makes a host save auth_data and hand its sessions over before it exits: the other host
    runs them with the same JIDs and no QR."""
    stack: Stack = await run_stack(ZAPHUB_SESSION_HOSTS="2", **SIM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http, watching(stack) as seen:
        tenant = await new_tenant(http, stack.admin_key)
        sessions = [await tenant.connected_session(f"d{i}", timeout=60) for i in range(4)]
        jids = {s["id"]: s["jid"] for s in sessions}
        where = await placed(tenant, sessions)
        victim = Counter(where.values()).most_common(1)[0][0]
        moving = [sid for sid, host in where.items() if host == victim]

        signalled_at = time.monotonic()
        os.kill(stack.pids()[victim], signal.SIGTERM)
        found = await reconnected_elsewhere(seen, moving, signalled_at, 60, not_on=victim)

        for sid, event in found.items():
            assert event.data.jid == jids[sid]
            handed = seen.of("session.disconnected", sid, signalled_at)
            assert handed and handed[0].data.will_reconnect  # said goodbye, did not just vanish
        assert not [e for sid in moving for e in seen.of("session.qr", sid, signalled_at)]


async def test_full_stack_restart_resumes_sessions_without_pairing(tmp_path: Path) -> None:
    """Stop the whole stack and start it again on the same data dir: sessions come back connected with
    the same JIDs, and no QR was ever shown after the first pairing."""
    env = {"ZAPHUB_SESSION_HOSTS": "2", **SIM}
    data_dir = tmp_path / "stack"
    async with Stack(data_dir, env=env) as stack:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            tenant = await new_tenant(http, stack.admin_key)
            sessions = [await tenant.connected_session(f"r{i}", timeout=60) for i in range(3)]
            jids = {s["id"]: s["jid"] for s in sessions}
        before = await stored_events(stack, tenant.id)
    assert (data_dir / "auth_key").stat().st_mode & 0o777 == 0o600

    async with Stack(data_dir, env=env) as stack:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            tenant.http = http
            for sid, jid in jids.items():

                async def again(sid: str = sid) -> dict[str, Any] | None:
                    session = await tenant.session(sid)
                    return session if session["status"] == "connected" and session["host"] else None

                session = await eventually(again, 60, f"session {sid} to reconnect after the restart")
                assert session["jid"] == jid
        history = await stored_events(stack, tenant.id)
    after = history[len(before) :]
    for sid, jid in jids.items():
        reconnects = [e for e in after if e.short == "session.connected" and str(e.sessionid) == sid]
        assert reconnects and all(e.data.jid == jid for e in reconnects)
        qrs = [e for e in history if e.short == "session.qr" and str(e.sessionid) == sid]
        first_connect = next(
            i for i, e in enumerate(history) if e.short == "session.connected" and str(e.sessionid) == sid
        )
        assert all(history.index(e) < first_connect for e in qrs)  # QRs only before the first pairing


async def test_full_host_queues_a_session_until_one_is_deleted(run_stack: Any) -> None:
    """With room for 2, a third session stays queued on no host; deleting one frees room and it starts,
    and the deleted session's auth_data is gone."""
    stack: Stack = await run_stack(ZAPHUB_MAX_CONCURRENT_SESSIONS="2", **SIM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        first = [await tenant.connected_session(f"c{i}", timeout=60) for i in range(2)]
        third = await tenant.create_session("c2")

        async def full() -> bool:
            [host] = await hosts(http, stack)
            return bool(host["sessions"] == host["capacity"] == 2)

        await eventually(full, 30, "GET /hosts to show the host full")
        for _ in range(15):  # several reconcile passes: it is not started anywhere
            waiting = await tenant.session(third["id"])
            assert waiting["status"] == "queued" and waiting["host"] is None
            await asyncio.sleep(0.2)
        stats = (await http.get("/api/v1/sessions/stats", headers=tenant.headers)).json()
        assert stats["sessions_by_status"]["queued"] == 1

        gone = first[0]["id"]
        auth = stack.data_dir / "auth" / tenant.id / gone / "auth.bin"
        assert auth.exists()
        response = await http.delete(f"/api/v1/sessions/{gone}", headers=tenant.headers)
        assert response.status_code == 204, response.text

        async def started() -> dict[str, Any] | None:
            session = await tenant.session(third["id"])
            return session if session["status"] == "connected" else None

        await eventually(started, 60, "the queued session to start")

        async def deleted() -> bool:
            return not auth.exists()

        await eventually(deleted, 30, "the deleted session's auth_data to be deleted")
        assert (await http.get(f"/api/v1/sessions/{gone}", headers=tenant.headers)).status_code == 404


async def test_deleting_a_session_whose_host_just_died_still_deletes_its_auth_data(run_stack: Any) -> None:
    """DELETE right after the only host was killed: nobody runs the session, yet its auth_data is deleted
    (by whichever host serves `host.any.delete`) and the session never comes back."""
    stack: Stack = await run_stack(**SIM)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http, watching(stack) as seen:
        tenant = await new_tenant(http, stack.admin_key)
        session = await tenant.connected_session("orphan", timeout=60)
        auth = stack.data_dir / "auth" / tenant.id / session["id"] / "auth.bin"
        assert auth.exists()
        old = stack.kill("session-host-1")
        deleted_at = time.monotonic()
        response = await http.delete(f"/api/v1/sessions/{session['id']}", headers=tenant.headers)
        assert response.status_code == 204, response.text

        async def gone() -> bool:
            return not auth.exists()

        await eventually(gone, 60, "the orphaned session's auth_data to be deleted")
        await stack.wait_restarted("session-host-1", old)

        async def lease_expired() -> bool:
            return all(h["sessions"] == 0 for h in await hosts(http, stack)) and bool(
                await hosts(http, stack)
            )

        await eventually(lease_expired, 60, "the restarted host to run nothing")
        assert not seen.of("session.connected", session["id"], deleted_at)
        assert not auth.exists()
