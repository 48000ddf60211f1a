"""The session-host on the simulator against a real nats-server: pairing, sends, leases, logout."""

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import TextContent
from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_contracts.host import FaultKind, HostError, HostOk, HostOp, InjectFault, SessionControl
from zaphub_contracts.sessions import Lease, whatsapp_message_id
from zaphub_contracts.streams import LEASES_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_session_host.handlers import UNFENCED_OPS, HostHandlers, failure
from zaphub_session_host.leases import FENCE, Leases, LeaseUnconfirmed

from .conftest import Client_, HostFactory, eventually

JID = re.compile(r"^55119\d{8}@s\.whatsapp\.net$")


def send_cmd(
    tenant: UUID, session: UUID, to: str = "5511988887777@s.whatsapp.net", seq: int = 1
) -> SendMessage:
    return SendMessage(
        tenant_id=tenant,
        session_id=session,
        issued_at=datetime.now(UTC),
        message_id=uuid4(),
        seq=seq,
        to=to,
        content=TextContent(text="olá"),
    )


async def connected(client: Client_, session: UUID, count: int = 1) -> list[object]:
    return await eventually(lambda: len(client.events.of("session.connected", session)) >= count)


async def connected_session(client: Client_) -> tuple[UUID, UUID]:
    """A new session of a new tenant, desired and connected on the hosts already started."""
    tenant, session = uuid4(), uuid4()
    await client.desire(tenant, session)
    await connected(client, session)
    return tenant, session


def delivered_lines(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / "sim" / "delivered.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_sim_session_pairs_with_a_new_jid_that_survives_a_restart(
    client: Client_, start_host: HostFactory
) -> None:
    """A new sim session shows a QR, pairs by itself with a fresh JID, and after a host restart
    reconnects with the same JID and no QR."""
    first = await start_host("first")
    _, session = await connected_session(client)
    qrs = client.events.of("session.qr", session)
    assert qrs and qrs[0].data.qr.startswith("2@") and qrs[0].data.qr.count(",") == 3
    jid = client.events.of("session.connected", session)[0].data.jid
    assert JID.match(jid)

    await first.stop()
    await start_host("second")
    await connected(client, session, count=2)
    again = client.events.of("session.connected", session)[-1].data
    assert (again.jid, again.host_id) == (jid, "second")
    assert len(client.events.of("session.qr", session)) == len(qrs)


async def test_send_hands_over_once_and_a_repeat_is_a_duplicate(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """A send answers the derived WhatsApp id, is logged once, gets receipts, and the same message
    id sent again is answered as a duplicate without being sent."""
    await start_host("h1")
    tenant, session = await connected_session(client)
    cmd = send_cmd(tenant, session)

    first = await client.send_one(session, cmd)
    assert isinstance(first, HostOk), first
    assert first.whatsapp_id == whatsapp_message_id(cmd.message_id)
    assert not first.duplicate and first.host_id == "h1"
    again = await client.send_one(session, cmd)
    assert isinstance(again, HostOk)
    assert again.duplicate and again.whatsapp_id == first.whatsapp_id

    lines = [x for x in delivered_lines(tmp_path / "data") if x["message_id"] == str(cmd.message_id)]
    assert len(lines) == 1
    assert lines[0]["whatsapp_id"] == first.whatsapp_id and lines[0]["type"] == "text"
    read = await eventually(lambda: client.events.of("message.read", session))
    delivered = client.events.of("message.delivered", session)
    assert delivered[0].data.message_id == read[0].data.message_id == cmd.message_id


async def test_a_run_goes_out_in_order_and_stops_at_the_first_failure(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """One request hands a run over in order; a command already handed over is a duplicate within the
    run, and the first that fails ends it: nothing after it is sent, and repeating the run sends each
    command once."""
    await start_host()
    tenant, session = await connected_session(client)
    run = [send_cmd(tenant, session, seq=seq) for seq in range(1, 6)]
    run[3] = send_cmd(tenant, session, to="999123456@s.whatsapp.net", seq=4)  # not on WhatsApp
    assert isinstance(await client.send_one(session, run[1]), HostOk)

    results = await client.send(session, *run)
    assert [type(r) for r in results] == [HostOk, HostOk, HostOk, HostError]
    assert [r.duplicate for r in results[:3] if isinstance(r, HostOk)] == [False, True, False]
    error = results[3]
    assert isinstance(error, HostError) and error.reason is FailureReason.RECIPIENT_NOT_ON_WHATSAPP
    ids = [x["message_id"] for x in delivered_lines(tmp_path / "data")]
    assert ids == [str(run[i].message_id) for i in (1, 0, 2)]  # run[4] was not attempted

    again = await client.send(session, *run[:3], run[4])
    assert [r.duplicate for r in again if isinstance(r, HostOk)] == [True, True, True, False]
    ids = [x["message_id"] for x in delivered_lines(tmp_path / "data")]
    assert ids == [str(run[i].message_id) for i in (1, 0, 2, 4)]


async def test_a_run_starts_no_hand_over_after_its_time(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """With slow sends, the host stops starting hand-overs once the run's seconds are up and answers
    for those it sent; the rest were not attempted and go in a later run."""
    await start_host()
    tenant, session = await connected_session(client)
    slow = InjectFault(tenant_id=tenant, session_id=session, kind=FaultKind.SLOW, seconds=0.3)
    assert isinstance(await client.request(session, "fault", slow), HostOk)
    run = [send_cmd(tenant, session, seq=seq) for seq in range(1, 6)]

    results = await client.send(session, *run, seconds=0.4)
    assert [type(r) for r in results] == [HostOk, HostOk]  # the third would start at 0.6 s
    results = await client.send(session, *run, seconds=10)
    assert [r.duplicate for r in results if isinstance(r, HostOk)] == [True, True, False, False, False]
    ids = [x["message_id"] for x in delivered_lines(tmp_path / "data")]
    assert ids == [str(cmd.message_id) for cmd in run]


async def test_recipient_not_on_whatsapp_fails_permanently(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """A recipient number starting 999 is refused with a permanent reason and nothing is sent."""
    await start_host()
    tenant, session = await connected_session(client)
    cmd = send_cmd(tenant, session, to="999123456@s.whatsapp.net")
    reply = await client.send_one(session, cmd)
    assert isinstance(reply, HostError)
    assert reply.reason is FailureReason.RECIPIENT_NOT_ON_WHATSAPP and not is_transient(reply.reason)
    assert not [x for x in delivered_lines(tmp_path / "data") if x["message_id"] == str(cmd.message_id)]


async def test_other_tenant_and_bad_payload_are_refused(client: Client_, start_host: HostFactory) -> None:
    """A request naming another tenant is not found, and a malformed one is an invalid payload."""
    await start_host()
    _, session = await connected_session(client)
    foreign = await client.send_one(session, send_cmd(uuid4(), session))
    assert isinstance(foreign, HostError) and foreign.reason is FailureReason.SESSION_NOT_FOUND
    raw = await client.nc.request(f"zaphub.v1.host.{session}.send", b"{not json", timeout=5)
    assert json.loads(raw.data)["results"][0]["reason"] == FailureReason.INVALID_PAYLOAD.value


async def test_injected_send_failures_are_transient(client: Client_, start_host: HostFactory) -> None:
    """The fail_sends fault makes the next sends fail with a transient transport error, then sends work."""
    await start_host()
    tenant, session = await connected_session(client)
    fault = InjectFault(tenant_id=tenant, session_id=session, kind=FaultKind.FAIL_SENDS, count=1)
    assert isinstance(await client.request(session, "fault", fault), HostOk)
    failed = await client.send_one(session, send_cmd(tenant, session))
    assert isinstance(failed, HostError) and failed.reason is FailureReason.TRANSPORT_ERROR
    assert is_transient(failed.reason)
    assert isinstance(await client.send_one(session, send_cmd(tenant, session)), HostOk)


async def test_dropped_connection_reconnects(client: Client_, start_host: HostFactory) -> None:
    """A dropped connection is reported as disconnected and comes back by itself with the same JID."""
    await start_host()
    tenant, session = await connected_session(client)
    drop = InjectFault(tenant_id=tenant, session_id=session, kind=FaultKind.DROP)
    assert isinstance(await client.request(session, "fault", drop), HostOk)
    await connected(client, session, count=2)
    gone = client.events.of("session.disconnected", session)
    assert gone and gone[0].data.will_reconnect
    jids = {e.data.jid for e in client.events.of("session.connected", session)}
    assert len(jids) == 1


async def test_concurrent_claims_have_one_winner(nats_url: str) -> None:
    """Two hosts claiming the same free session at once: exactly one gets the lease."""
    bus = await Bus.connect(nats_url, name="t", source="/t")
    kv = await bus.kv(LEASES_BUCKET)
    tenant = uuid4()
    for _ in range(20):
        session = uuid4()
        a, b = Leases(bus, kv, "a", 2), Leases(bus, kv, "b", 2)
        won = await asyncio.gather(a.claim(tenant, session), b.claim(tenant, session))
        assert sorted(won) == [False, True]
    await bus.close()


async def test_a_lease_not_refreshed_for_most_of_its_ttl_fences_the_host_before_it_expires(
    nats_url: str,
) -> None:
    """A host whose refreshes stall stops acting for the session (sends answer no_host) before the key
    can expire and another host claim it: the two never serve at once."""
    bus = await Bus.connect(nats_url, name="t", source="/t")
    kv = await bus.kv(LEASES_BUCKET)
    tenant, session = uuid4(), uuid4()
    a, b = Leases(bus, kv, "a", 2), Leases(bus, kv, "b", 2)
    assert await a.claim(tenant, session)
    a.check(session)  # just written: a may send
    await asyncio.sleep(2 * FENCE + 0.1)  # no refresh meanwhile (a stalled reconcile pass)
    with pytest.raises(LeaseUnconfirmed):
        a.check(session)
    assert failure(LeaseUnconfirmed("x")).reason is FailureReason.NO_HOST  # transient: retried
    assert not await b.claim(tenant, session)  # the key is still there: a fenced itself first
    await bus.close()


async def test_a_fenced_host_refuses_every_op_but_letting_go_of_the_session(nats_url: str) -> None:
    """Not only sends: a query, presence or group op reaching a host that cannot confirm its lease is
    answered no_host (retried, or a 503) before the op runs; stop and delete still get through."""
    session = uuid4()
    ran: list[str] = []

    def unconfirmed(_: UUID) -> None:
        raise LeaseUnconfirmed("stalled refreshes")

    runner = cast(Any, SimpleNamespace(session_id=session, ctx=SimpleNamespace(lease_check=unconfirmed)))
    handlers = HostHandlers(cast(Any, None))
    bus = await Bus.connect(nats_url, name="t", source="/t")

    async def serve(msg: Msg) -> None:
        ran.append(msg.subject)
        await handlers.serve(runner, msg)

    await bus.nc.subscribe(subjects.host(session, "*"), cb=serve)
    for op in (HostOp.CONTACTS_CHECK, HostOp.PRESENCE, HostOp.GROUP, HostOp.MARK_READ):
        reply = await bus.nc.request(subjects.host(session, op), b"{}", timeout=5)
        refused = HostError.model_validate_json(reply.data)
        assert refused.reason is FailureReason.NO_HOST, op
    assert {HostOp.STOP, HostOp.DELETE} == UNFENCED_OPS
    assert len(ran) == 4
    await bus.close()


async def test_two_hosts_split_sessions_and_take_over_on_drain(
    client: Client_, start_host: HostFactory
) -> None:
    """Two hosts never both run a session; when one drains, the other takes its sessions over with
    the same JIDs and no QR."""
    tenant = uuid4()
    sessions = [uuid4() for _ in range(6)]
    a = await start_host("a")
    b = await start_host("b")
    for s in sessions:
        await client.desire(tenant, s)
    for s in sessions:
        await connected(client, s)
    owners = {s: {e.data.host_id for e in client.events.of("session.connected", s)} for s in sessions}
    assert all(len(hosts) == 1 for hosts in owners.values())
    assert {h for hosts in owners.values() for h in hosts} == {"a", "b"}  # the least loaded claims first
    qr_count = len(client.events.of("session.qr"))
    jids = {s: client.events.of("session.connected", s)[0].data.jid for s in sessions}

    on_a = [s for s, hosts in owners.items() if hosts == {"a"}]
    await a.stop()
    for s in on_a:
        await eventually(
            lambda s=s: any(e.data.host_id == "b" for e in client.events.of("session.connected", s))
        )
        assert client.events.of("session.connected", s)[-1].data.jid == jids[s]
    assert len(client.events.of("session.qr")) == qr_count
    assert b.sessions is not None and len(b.sessions) == len(sessions)


async def test_a_host_that_loses_its_lease_stops_serving(client: Client_, start_host: HostFactory) -> None:
    """When another owner takes the lease, the host stops answering for that session."""
    await start_host("loser")
    tenant, session = await connected_session(client)
    ping = SessionControl(tenant_id=tenant, session_id=session)
    assert isinstance(
        await client.request(session, "fault", InjectFault(**ping.model_dump(), kind="clear")), HostOk
    )

    kv = await client.bus.kv(LEASES_BUCKET)
    intruder = Lease(session_id=session, tenant_id=tenant, host_id="intruder", acquired_at=datetime.now(UTC))
    await kv.put(str(session), encode(intruder))  # no TTL: it stays the intruder's

    async def unserved() -> bool:
        try:
            await client.send_one(session, send_cmd(tenant, session), timeout=1)
        except NoRespondersError:
            return True
        return False

    deadline = asyncio.get_running_loop().time() + 5
    while not await unserved():
        assert asyncio.get_running_loop().time() < deadline, "host kept serving a session it lost"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # and it does not take it back
    with pytest.raises(NoRespondersError):
        await client.send_one(session, send_cmd(tenant, session), timeout=1)


async def test_logout_clears_auth_data(client: Client_, start_host: HostFactory, tmp_path: Path) -> None:
    """Logout deletes the stored identity, emits session.logged_out, and later sends fail as logged out."""
    await start_host()
    tenant, session = await connected_session(client)
    auth = tmp_path / "data" / "auth" / str(tenant) / str(session) / "auth.bin"
    await eventually(auth.exists)

    reply = await client.request(session, "logout", SessionControl(tenant_id=tenant, session_id=session))
    assert isinstance(reply, HostOk), reply
    assert not auth.exists()
    await eventually(lambda: client.events.of("session.logged_out", session))
    failed = await client.send_one(session, send_cmd(tenant, session))
    assert isinstance(failed, HostError) and failed.reason is FailureReason.SESSION_LOGGED_OUT


async def test_removed_session_is_stopped_and_unserved(client: Client_, start_host: HostFactory) -> None:
    """When a session's desired key is deleted, its host disconnects it and stops answering for it."""
    await start_host()
    tenant, session = await connected_session(client)
    await client.undesire(tenant, session)
    await eventually(lambda: client.events.of("session.disconnected", session))
    assert not client.events.of("session.disconnected", session)[-1].data.will_reconnect
    with pytest.raises(NoRespondersError):
        await client.send_one(session, send_cmd(tenant, session), timeout=1)


async def test_pair_code_pairs_a_session_without_autopair(client: Client_, start_host: HostFactory) -> None:
    """With autopair off the session waits at the QR; a pairing code pairs it under the given phone."""
    tenant, session = uuid4(), uuid4()
    await start_host(sim_autopair=False)
    await client.desire(tenant, session)
    await eventually(lambda: client.events.of("session.qr", session))
    await asyncio.sleep(0.5)
    assert not client.events.of("session.connected", session)
    from zaphub_contracts.host import PairCodeRequest

    reply = await client.request(
        session, "pair_code", PairCodeRequest(tenant_id=tenant, session_id=session, phone="+5511977776666")
    )
    assert isinstance(reply, HostOk) and reply.code and len(reply.code) == 9
    await connected(client, session)
    assert client.events.of("session.connected", session)[0].data.jid == "5511977776666@s.whatsapp.net"
    assert client.events.of("session.pair_code", session)[0].data.code == reply.code
