"""Restart and logout as host ops on the simulator against a real nats-server."""

from uuid import uuid4

from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOk, HostOp, PairCodeRequest, SessionControl

from .conftest import Client_, HostFactory, eventually
from .test_host import connected, connected_session, send_cmd


async def test_restart_reconnects_with_the_same_identity_and_no_qr(
    client: Client_, start_host: HostFactory
) -> None:
    """A restart closes the connection and connects again here, with the same JID and no new QR."""
    await start_host(sim_autopair=True)
    tenant, session = await connected_session(client)
    jid = client.events.of("session.connected", session)[0].data.jid
    qrs = len(client.events.of("session.qr", session))
    reply = await client.request(
        session, HostOp.RESTART, SessionControl(tenant_id=tenant, session_id=session)
    )
    assert isinstance(reply, HostOk), reply
    await connected(client, session, count=2)
    assert client.events.of("session.connected", session)[-1].data.jid == jid
    assert len(client.events.of("session.qr", session)) == qrs


async def test_a_logged_out_session_shows_a_new_qr_after_a_restart(
    client: Client_, start_host: HostFactory
) -> None:
    """Logout unlinks the device but the session stays on its host; a restart then shows a QR code and
    pairs a new identity."""
    await start_host(sim_autopair=True)
    tenant, session = await connected_session(client)
    ctl = SessionControl(tenant_id=tenant, session_id=session)
    qrs = len(client.events.of("session.qr", session))
    assert isinstance(await client.request(session, HostOp.LOGOUT, ctl), HostOk)
    await eventually(lambda: client.events.of("session.logged_out", session))
    assert isinstance(await client.request(session, HostOp.RESTART, ctl), HostOk)
    await eventually(lambda: len(client.events.of("session.qr", session)) > qrs)
    await connected(client, session, count=2)


async def test_logout_shows_a_new_qr_by_itself_and_pairs_again(
    client: Client_, start_host: HostFactory
) -> None:
    """After a logout the session stays on its host and shows a new QR code with no restart; sends are
    refused as logged out until it pairs again (here by a pairing code, under another number)."""
    await start_host(sim_autopair=False)
    tenant, session = uuid4(), uuid4()
    await client.desire(tenant, session)
    await eventually(lambda: client.events.of("session.qr", session))
    first = PairCodeRequest(tenant_id=tenant, session_id=session, phone="+5511977776666")
    assert isinstance(await client.request(session, HostOp.PAIR_CODE, first), HostOk)
    await connected(client, session)
    qrs = len(client.events.of("session.qr", session))

    ctl = SessionControl(tenant_id=tenant, session_id=session)
    assert isinstance(await client.request(session, HostOp.LOGOUT, ctl), HostOk)
    await eventually(lambda: client.events.of("session.logged_out", session))
    await eventually(lambda: len(client.events.of("session.qr", session)) > qrs)
    refused = await client.send_one(session, send_cmd(tenant, session))
    assert isinstance(refused, HostError) and refused.reason is FailureReason.SESSION_LOGGED_OUT

    again = PairCodeRequest(tenant_id=tenant, session_id=session, phone="+5511955554444")
    assert isinstance(await client.request(session, HostOp.PAIR_CODE, again), HostOk)
    await connected(client, session, count=2)
    assert client.events.of("session.connected", session)[-1].data.jid == "5511955554444@s.whatsapp.net"
    assert isinstance(await client.send_one(session, send_cmd(tenant, session)), HostOk)
