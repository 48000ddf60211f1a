"""`simulate` on the simulator: a contact's message (media with the simulator's own bytes, stored in the
media store), a receipt for what the session sent, and a clear refusal for what needs more."""

import hashlib
from pathlib import Path
from uuid import UUID

from zaphub_contracts.content import ImageContent, TextContent
from zaphub_contracts.host import HostError, HostOk, HostOp, Simulate, SimulateAction
from zaphub_runtime.media_store import LocalDirMediaStore, media_key

from .conftest import Client_, HostFactory, eventually
from .test_host import connected_session, send_cmd


def simulate(tenant: UUID, session: UUID, action: SimulateAction, **fields: object) -> Simulate:
    return Simulate(tenant_id=tenant, session_id=session, action=action, sender="+5521987650001", **fields)


async def test_a_contact_sends_an_image_whose_bytes_are_stored(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    await start_host("sim-contact")
    tenant, session = await connected_session(client)
    image = ImageContent(url="https://example.com/cat.png", caption="look")
    reply = await client.request(
        session, HostOp.SIMULATE, simulate(tenant, session, SimulateAction.MESSAGE, content=image)
    )
    assert isinstance(reply, HostOk) and reply.whatsapp_id
    (received,) = await eventually(lambda: client.events.of("message.received", session))
    assert received.data.sender == "5521987650001@s.whatsapp.net" and received.data.content.caption == "look"
    (stored,) = await eventually(lambda: client.events.of("message.media_stored", session))
    media = stored.data.media
    assert media.mimetype == "image/png" and media.url.endswith(f"/{received.data.message_id}/media")
    found = await LocalDirMediaStore(tmp_path / "data" / "media").get(
        media_key(tenant, session, received.data.message_id)
    )
    assert found is not None and hashlib.sha256(found[1]).hexdigest() == media.sha256


async def test_a_contact_reads_what_the_session_sent_edits_revokes_votes_and_types(
    client: Client_, start_host: HostFactory
) -> None:
    await start_host("sim-contact-2")
    tenant, session = await connected_session(client)
    (sent,) = await client.send(session, send_cmd(tenant, session, to="999000@s.whatsapp.net"))
    assert isinstance(sent, HostError)  # not on WhatsApp; any WhatsApp id will do for a receipt
    read = simulate(tenant, session, SimulateAction.RECEIPT, message_id="3EB0AAAA", receipt="read")
    assert isinstance(await client.request(session, HostOp.SIMULATE, read), HostOk)
    (event,) = await eventually(lambda: client.events.of("message.read", session))
    assert event.data.whatsapp_id == "3EB0AAAA" and event.data.chat == "5521987650001@s.whatsapp.net"
    actions = [
        (SimulateAction.EDIT, {"message_id": "3EB0BBBB", "text": "fixed"}, "message.edited"),
        (SimulateAction.REVOKE, {"message_id": "3EB0BBBB"}, "message.revoked"),
        (SimulateAction.POLL_VOTE, {"message_id": "3EB0CCCC", "options": ["yes"]}, "poll.vote"),
        (SimulateAction.TYPING, {"state": "composing"}, "chat.presence"),
    ]
    for action, fields, short in actions:
        reply = await client.request(session, HostOp.SIMULATE, simulate(tenant, session, action, **fields))
        assert isinstance(reply, HostOk), (action, reply)
        (event,) = await eventually(lambda short=short: client.events.of(short, session))
        assert event.data.chat == "5521987650001@s.whatsapp.net"
    assert client.events.of("message.edited", session)[0].data.text == "fixed"
    text = simulate(tenant, session, SimulateAction.MESSAGE, content=TextContent(text="oi"))
    assert isinstance(await client.request(session, HostOp.SIMULATE, text), HostOk)
