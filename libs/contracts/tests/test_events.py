"""Events: CloudEvents 1.0 envelopes that round-trip, name their type and tolerate later additions."""

import json
import re
from uuid import UUID

import pytest
from pydantic import ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.events import EVENT_BY_SHORT, EVENT_CLASSES, EventBase, EventData, parse_event


def test_every_event_type_has_an_example(event_examples: dict[str, EventData]) -> None:
    """The shared examples cover every event class, so a new event type cannot skip these tests."""
    assert set(event_examples) == {cls.short for cls in EVENT_CLASSES} == set(EVENT_BY_SHORT)


def test_event_round_trips_through_json_and_its_subject(event: EventBase) -> None:
    """An event parses back to the same class and value, and its subject parses back to its route."""
    parsed = parse_event(event.model_dump_json())
    assert type(parsed) is type(event) and parsed == event
    routed = subjects.parse(subjects.event(event.tenantid, event.sessionid, event.short))
    assert routed == subjects.Routed(f"evt.{event.short}", event.tenantid, event.sessionid)


def test_event_carries_the_required_cloudevents_attributes(
    event: EventBase, tenant_id: UUID, session_id: UUID
) -> None:
    """specversion, id, source and type are present, and type is io.zaphub.<short>.v1."""
    body = json.loads(event.model_dump_json())
    assert body["specversion"] == "1.0"
    assert body["id"] and body["source"] and body["time"]
    assert body["type"] == f"io.zaphub.{event.short}.v1"
    assert re.fullmatch(r"io\.zaphub\.[a-z_]+\.[a-z_]+\.v1", body["type"])
    assert body["datacontenttype"] == "application/json"
    assert (body["tenantid"], body["sessionid"]) == (str(tenant_id), str(session_id))


def test_unknown_fields_are_ignored_for_forward_compatibility(event: EventBase) -> None:
    """A v1 consumer reads an event carrying attributes and data fields added later."""
    body = json.loads(event.model_dump_json())
    body["newattribute"] = {"nested": 1}
    body["data"]["new_field"] = "x"
    if isinstance(body["data"].get("content"), dict):
        body["data"]["content"]["new_content_field"] = True
    assert parse_event(json.dumps(body)) == event


def test_a_command_with_unknown_fields_still_parses(tenant_id: UUID, session_id: UUID) -> None:
    """A dispatcher on an older v1 reads a send command that carries fields added later."""
    raw = {
        "tenant_id": str(tenant_id),
        "session_id": str(session_id),
        "issued_at": "2025-01-02T03:04:05Z",
        "message_id": "9e8d7c6b-5a49-4838-a726-150413021103",
        "seq": 1,
        "to": "5511999998888@s.whatsapp.net",
        "content": {"type": "text", "text": "hi", "added_later": 1},
        "priority": "high",
    }
    assert SendMessage.model_validate_json(json.dumps(raw)).seq == 1


def test_an_unknown_event_type_is_rejected_not_mistaken(event: EventBase) -> None:
    """An envelope whose type v1 does not know fails validation instead of parsing as another event."""
    body = json.loads(event.model_dump_json())
    body["type"] = "io.zaphub.message.unknown.v1"
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body))


def test_event_ids_derived_from_the_same_fact_are_equal() -> None:
    """derive_id gives a repeated emission of one fact the same id, so JetStream stores it once."""
    assert EventBase.derive_id("sent", 1) == EventBase.derive_id("sent", 1)
    assert EventBase.derive_id("sent", 1) != EventBase.derive_id("sent", 2)
