"""The v1 contract: generated schemas in sync, events round-trip, subjects parse, ids are stable."""

import json
import uuid
from datetime import UTC, datetime

import jsonschema
import pytest

from zaphub_contracts import export, subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import TextContent
from zaphub_contracts.events import EVENT_CLASSES, MessageSent, MessageSentData, parse_event
from zaphub_contracts.sessions import whatsapp_message_id

TENANT, SESSION = uuid.uuid4(), uuid.uuid4()


def _sent_event() -> MessageSent:
    message_id = uuid.uuid4()
    return MessageSent(
        id=uuid.uuid4(),
        source="/zaphub/test",
        time=datetime.now(UTC),
        tenantid=TENANT,
        sessionid=SESSION,
        data=MessageSentData(
            message_id=message_id,
            whatsapp_id=whatsapp_message_id(message_id),
            to="1@s.whatsapp.net",
            sent_at=datetime.now(UTC),
        ),
    )


def test_checked_in_schemas_match_the_models() -> None:
    """The JSON Schemas and AsyncAPI document on disk equal what the models generate."""
    stale = export.drifted()
    assert not stale, f"contracts drifted from the models; run `just schemas`: {stale}"


def test_every_event_type_is_a_cloudevent_named_after_its_subject() -> None:
    """Each event class has the CloudEvents type io.zaphub.<short>.v1 and a subject that parses back."""
    for cls in EVENT_CLASSES:
        assert cls.model_fields["type"].default == f"io.zaphub.{cls.short}.v1"
        routed = subjects.parse(subjects.event(TENANT, SESSION, cls.short))
        assert (routed.kind, routed.tenant_id, routed.session_id) == (f"evt.{cls.short}", TENANT, SESSION)


def test_event_round_trips_and_carries_the_required_attributes() -> None:
    """An event serialises with specversion, id, source and type, and parses back to the same class."""
    event = _sent_event()
    raw = event.model_dump_json()
    body = json.loads(raw)
    assert {"specversion", "id", "source", "type", "time", "tenantid", "sessionid", "data"} <= set(body)
    assert parse_event(raw) == event


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A v1 consumer reads an event that carries fields added later."""
    body = json.loads(_sent_event().model_dump_json())
    body["new_attribute"] = 1
    body["data"]["new_field"] = "x"
    assert isinstance(parse_event(json.dumps(body)), MessageSent)


def test_payload_validates_against_the_generated_json_schema() -> None:
    """What the models emit is valid under the JSON Schema given to other languages."""
    schema = json.loads((export.ROOT / "schemas" / "events" / "message.sent.json").read_text())
    jsonschema.validate(json.loads(_sent_event().model_dump_json()), schema)
    command = SendMessage(
        tenant_id=TENANT,
        session_id=SESSION,
        issued_at=datetime.now(UTC),
        message_id=uuid.uuid4(),
        seq=1,
        to="5511999998888@s.whatsapp.net",
        content=TextContent(text="hi"),
    )
    send_schema = json.loads((export.ROOT / "schemas" / "commands" / "send_message.json").read_text())
    jsonschema.validate(json.loads(command.model_dump_json()), send_schema)


@pytest.mark.parametrize(
    "subject",
    ["zaphub.v2.cmd.message.send.a.b", "zaphub.v1.cmd.message.send.not-a-uuid.x", "other", "zaphub.v1.evt.a"],
)
def test_malformed_subjects_are_rejected(subject: str) -> None:
    """Subjects outside the v1 grammar raise SubjectError."""
    with pytest.raises(subjects.SubjectError):
        subjects.parse(subject)


def test_whatsapp_id_is_derived_and_whatsapp_shaped() -> None:
    """The WhatsApp id of a message is stable across resends and looks like WhatsApp's own."""
    message_id = uuid.uuid4()
    first = whatsapp_message_id(message_id)
    assert first == whatsapp_message_id(message_id)
    assert first.startswith("3EB0") and len(first) == 22 and first == first.upper()
    assert first != whatsapp_message_id(uuid.uuid4())
