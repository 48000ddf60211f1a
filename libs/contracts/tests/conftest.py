"""One valid example of every event type, shared by the contract tests."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from zaphub_contracts import events as ev
from zaphub_contracts.content import TextContent
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import Group, Participant, ParticipantAction, Role
from zaphub_contracts.sessions import whatsapp_message_id

TENANT = uuid.UUID("0b6f3a52-5f55-4d8e-9a64-3f2d6c7f1a01")
SESSION = uuid.UUID("5d0c9b1e-2a4f-4c3b-8e7d-6a5b4c3d2e02")
MESSAGE = uuid.UUID("9e8d7c6b-5a49-4838-a726-150413021103")
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
JID = "5511999998888@s.whatsapp.net"
GROUP = "120363025246125486@g.us"

EVENT_DATA: dict[str, ev.EventData] = {
    "session.qr": ev.SessionQrData(qr="2@abc,def,ghi", expires_at=NOW + timedelta(seconds=20)),
    "session.pair_code": ev.SessionPairCodeData(code="ABCD-EFGH", phone="5511999998888"),
    "session.connected": ev.SessionConnectedData(jid=JID, push_name="Ana", host_id="host-1"),
    "session.disconnected": ev.SessionDisconnectedData(reason="stream error"),
    "session.logged_out": ev.SessionLoggedOutData(reason="unlinked from the phone"),
    "session.failed": ev.SessionFailedData(reason=FailureReason.TRANSPORT_ERROR, detail="boom"),
    "message.sent": ev.MessageSentData(
        message_id=MESSAGE, whatsapp_id=whatsapp_message_id(MESSAGE), to=JID, sent_at=NOW
    ),
    "message.delivered": ev.MessageReceiptData(
        message_id=MESSAGE, whatsapp_id=whatsapp_message_id(MESSAGE), chat=JID, at=NOW
    ),
    "message.read": ev.MessageReceiptData(whatsapp_id="3EB0FFFFFFFFFFFFFFFFFF", chat=JID, at=NOW),
    "message.failed": ev.MessageFailedData(
        message_id=MESSAGE, reason=FailureReason.RECIPIENT_NOT_ON_WHATSAPP, attempts=1
    ),
    "message.rate_limited": ev.MessageRateLimitedData(message_id=MESSAGE, retry_after=12.5, window="minute"),
    "message.received": ev.MessageReceivedData(
        message_id=MESSAGE,
        whatsapp_id="ABCDEF0123456789",
        chat=JID,
        sender=JID,
        sent_at=NOW,
        content=TextContent(text="olá"),
    ),
    "message.edited": ev.MessageEditedData(
        message_id=MESSAGE,
        whatsapp_id="ABCDEF0123456789",
        chat=JID,
        from_me=True,
        text="fixed",
        edited_at=NOW,
    ),
    "message.revoked": ev.MessageRevokedData(
        whatsapp_id="ABCDEF0123456789", chat=JID, sender=JID, revoked_at=NOW
    ),
    "message.reaction": ev.MessageReactionData(
        whatsapp_id="ABCDEF0123456789", chat=JID, sender=JID, emoji="👍", from_me=True, at=NOW
    ),
    "poll.vote": ev.PollVoteData(poll_id="ABCDEF0123456789", chat=JID, voter=JID, options=["yes"], at=NOW),
    "presence.updated": ev.PresenceUpdatedData(jid=JID, available=False, last_seen=NOW),
    "chat.presence": ev.ChatPresenceData(chat=JID, sender=JID, state="composing", at=NOW),
    "message.media_stored": ev.MessageMediaStoredData(
        message_id=MESSAGE,
        whatsapp_id="ABCDEF0123456789",
        media=ev.StoredMediaRef(
            url=f"/api/v1/messages/{MESSAGE}/media", mimetype="image/png", size=68, sha256="ab" * 32
        ),
    ),
    "group.joined": ev.GroupJoinedData(
        group=Group(
            jid=GROUP,
            subject="Order 1042",
            owner=JID,
            created_at=NOW,
            participants=[Participant(jid=JID, role=Role.SUPERADMIN)],
        ),
        by=JID,
    ),
    "group.left": ev.GroupLeftData(group=GROUP, by=JID),
    "group.updated": ev.GroupUpdatedData(group=GROUP, by=JID, subject="Order 1042 (shipped)"),
    "group.participants": ev.GroupParticipantsData(
        group=GROUP, action=ParticipantAction.PROMOTE, participants=[JID], by=JID
    ),
    "group.join_request": ev.GroupJoinRequestData(group=GROUP, jid=JID),
    "history.imported": ev.HistoryImportedData(
        chat=JID,
        name="Ana",
        sync_type="initial_bootstrap",
        messages=[
            ev.ImportedMessage(
                message_id=MESSAGE,
                whatsapp_id="3EB0HISTORY",
                direction="inbound",
                sender=JID,
                sender_lid="123456789012345@lid",
                push_name="Ana",
                sent_at=NOW - timedelta(days=3),
                content=TextContent(text="oi"),
            )
        ],
    ),
}


def example_event(cls: type[ev.EventBase]) -> ev.EventBase:
    """A valid event of type `cls`, with a stable id derived from its type."""
    return cls.model_validate(
        {
            "id": ev.EventBase.derive_id(cls.short, MESSAGE),
            "source": "/zaphub/test",
            "time": NOW,
            "subject": f"messages/{MESSAGE}",
            "tenantid": TENANT,
            "sessionid": SESSION,
            "data": EVENT_DATA[cls.short],
        }
    )


@pytest.fixture
def event_examples() -> dict[str, ev.EventData]:
    """The data of one example per event short name."""
    return EVENT_DATA


@pytest.fixture
def tenant_id() -> uuid.UUID:
    return TENANT


@pytest.fixture
def session_id() -> uuid.UUID:
    return SESSION


@pytest.fixture(params=ev.EVENT_CLASSES, ids=lambda cls: cls.short)
def event(request: pytest.FixtureRequest) -> ev.EventBase:
    """Every event type in turn."""
    return example_event(request.param)
