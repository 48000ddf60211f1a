"""Derived WhatsApp message ids: stable across resends and shaped like WhatsApp's own."""

import re
from uuid import UUID, uuid4

from zaphub_contracts.sessions import whatsapp_message_id

WHATSAPP_ID = re.compile(r"3EB0[0-9A-F]{18}")


def test_whatsapp_id_is_the_same_for_every_resend_of_a_message() -> None:
    """Deriving the id twice from one ZapHub id gives one WhatsApp id, so a resend is shown once."""
    message_id = uuid4()
    assert whatsapp_message_id(message_id) == whatsapp_message_id(UUID(str(message_id)))


def test_whatsapp_id_is_whatsapp_shaped_and_distinct_per_message() -> None:
    """Ids look like WhatsApp web ids (3EB0 and 18 upper-case hex digits) and differ between messages."""
    ids = {whatsapp_message_id(uuid4()) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(WHATSAPP_ID.fullmatch(i) for i in ids)


def test_whatsapp_id_derivation_does_not_change_between_releases() -> None:
    """Known vectors pin the derivation: a change would resend messages already handed over before it."""
    assert whatsapp_message_id(UUID(int=0)) == "3EB0374708FFF7719DD597"
    assert whatsapp_message_id(UUID("12345678-1234-5678-1234-567812345678")) == "3EB0DDCBC45ED538344900"
