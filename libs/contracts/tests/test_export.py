"""Generated contract artifacts: in sync with the models, deterministic, valid, and complete."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from zaphub_contracts import export, streams
from zaphub_contracts.commands import SendMessage, SessionAction, SessionCommand
from zaphub_contracts.content import TextContent
from zaphub_contracts.events import EVENT_CLASSES, EventBase
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOk, SendRun, SendRunReply, SessionControl
from zaphub_contracts.ratelimit import AcquireReply, AcquireRequest

TENANT, SESSION = UUID(int=10), UUID(int=20)
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _schema(group: str, name: str) -> dict[str, Any]:
    return json.loads((export.SCHEMAS_DIR / group / f"{name}.json").read_text())


def _validate(payload: str, group: str, name: str) -> None:
    Draft202012Validator(_schema(group, name), format_checker=FormatChecker()).validate(json.loads(payload))


def _asyncapi() -> dict[str, Any]:
    return yaml.safe_load(export.ASYNCAPI_PATH.read_text())


def test_checked_in_schemas_and_asyncapi_match_the_models() -> None:
    """The JSON Schemas and AsyncAPI document on disk equal what the models generate now."""
    stale = [str(p.relative_to(export.ROOT)) for p in export.drifted()]
    assert not stale, f"contracts drifted from the models, run `just schemas` and commit: {stale}"


def test_check_cli_passes_on_clean_files_in_any_hash_seed() -> None:
    """`python -m zaphub_contracts.export --check` exits 0 in a fresh process with another hash seed."""
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    result = subprocess.run(
        [sys.executable, "-m", "zaphub_contracts.export", "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the exporter at an empty directory instead of libs/contracts."""
    monkeypatch.setattr(export, "ROOT", tmp_path)
    monkeypatch.setattr(export, "SCHEMAS_DIR", tmp_path / "schemas")
    monkeypatch.setattr(export, "ASYNCAPI_PATH", tmp_path / "asyncapi.yaml")
    return tmp_path


def test_check_names_changed_missing_and_orphaned_files(
    scratch_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits 1 and names a hand-edited file, a deleted one and a schema no model produces."""
    assert export.main([]) == 0
    assert export.main(["--check"]) == 0
    (scratch_root / "asyncapi.yaml").write_text("asyncapi: 3.0.0\n")
    (scratch_root / "schemas" / "events" / "message.sent.json").unlink()
    (scratch_root / "schemas" / "events" / "message.gone.json").write_text("{}")
    capsys.readouterr()
    assert export.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "asyncapi.yaml" in err and "schemas/events/message.sent.json" in err
    assert "schemas/events/message.gone.json" in err and "just schemas" in err
    assert export.main([]) == 0
    assert not (scratch_root / "schemas" / "events" / "message.gone.json").exists()
    assert export.main(["--check"]) == 0


def test_there_is_one_schema_file_per_event_command_and_dead_letter() -> None:
    """Every event type, both commands and the dead letter have their schema file at a stable path."""
    expected = {export.SCHEMAS_DIR / "events" / f"{cls.short}.json" for cls in EVENT_CLASSES}
    expected |= {export.SCHEMAS_DIR / "commands" / f"{n}.json" for n in ("send_message", "session_command")}
    expected.add(export.SCHEMAS_DIR / "deadletters" / "dead_letter.json")
    assert expected <= {m.path for m in export.all_messages()}
    assert all(path.exists() for path in expected)


def _schema_files() -> list[Path]:
    return sorted(export.SCHEMAS_DIR.rglob("*.json"))


@pytest.mark.parametrize("path", _schema_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_schema_file_is_a_valid_2020_12_schema_with_id_title_and_description(path: Path) -> None:
    """Each file declares draft 2020-12, a $id mirroring its path, a title and a description."""
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    relative = path.relative_to(export.SCHEMAS_DIR).as_posix()
    assert schema["$id"] == f"https://zaphub.dev/schemas/v1/{relative}"
    assert schema["title"] and schema["description"]


def test_every_event_validates_against_its_generated_schema(event: EventBase) -> None:
    """What the models emit is valid under the JSON Schema given to other languages."""
    _validate(event.model_dump_json(), "events", event.short)


def test_commands_and_replies_validate_against_their_generated_schemas() -> None:
    """Commands, host and rate-limit messages as the services send them pass their schemas."""
    send = SendMessage(
        tenant_id=TENANT,
        session_id=SESSION,
        issued_at=NOW,
        message_id=UUID(int=30),
        seq=1,
        to="5511999998888@s.whatsapp.net",
        content=TextContent(text="olá", mentions=["5511999997777"]),
    )
    _validate(send.model_dump_json(), "commands", "send_message")
    command = SessionCommand(tenant_id=TENANT, session_id=SESSION, issued_at=NOW, action=SessionAction.LOGOUT)
    _validate(command.model_dump_json(), "commands", "session_command")
    _validate(
        SessionControl(tenant_id=TENANT, session_id=SESSION).model_dump_json(), "host", "session_control"
    )
    _validate(HostOk(host_id="h1", whatsapp_id="3EB0AA").model_dump_json(), "host", "host_ok")
    run = SendRun(tenant_id=TENANT, session_id=SESSION, commands=[send, send.model_copy(update={"seq": 2})])
    _validate(run.model_dump_json(), "host", "send_run")
    results = [HostOk(host_id="h1", whatsapp_id="3EB0AA"), HostError(reason=FailureReason.NO_HOST)]
    _validate(SendRunReply(results=results).model_dump_json(), "host", "send_run_reply")
    _validate(
        AcquireRequest(tenant_id=TENANT, token_ids=[UUID(int=40)]).model_dump_json(),
        "ratelimit",
        "acquire_request",
    )
    _validate(
        AcquireReply(granted=0, retry_after=3.0, window="hour").model_dump_json(),
        "ratelimit",
        "acquire_reply",
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"type": "io.zaphub.message.read.v1"}, "type of another event"),
        ({"specversion": "0.3"}, "other CloudEvents version"),
        ({"id": "not-a-uuid"}, "id is not a UUID"),
        ({"data": {"message_id": "x"}}, "data misses required fields"),
    ],
)
def test_schema_rejects_a_malformed_event(change: dict[str, Any], why: str) -> None:
    """The generated schema refuses envelopes a v1 consumer could not read."""
    body = {
        "specversion": "1.0",
        "id": str(UUID(int=1)),
        "source": "/zaphub/test",
        "type": "io.zaphub.message.sent.v1",
        "time": NOW.isoformat(),
        "tenantid": str(TENANT),
        "sessionid": str(SESSION),
        "data": {
            "message_id": str(UUID(int=2)),
            "whatsapp_id": "3EB0",
            "to": "1@s",
            "sent_at": NOW.isoformat(),
        },
    }
    _validate(json.dumps(body), "events", "message.sent")
    with pytest.raises(jsonschema.ValidationError):
        _validate(json.dumps({**body, **change}), "events", "message.sent")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_document_is_self_contained() -> None:
    """Every $ref in the AsyncAPI document points inside it, so tools need no network to read it."""
    doc = _asyncapi()
    refs = set(_refs(doc))
    assert refs and all(ref.startswith("#/") for ref in refs)
    for ref in refs:
        _resolve(doc, ref)


def test_asyncapi_describes_the_server_the_events_and_the_commands() -> None:
    """AsyncAPI 3.0 with a nats server, every event type on the event channel, and send commands."""
    doc = _asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["nats"]["protocol"] == "nats"
    events = doc["channels"]["events"]
    assert events["address"] == "zaphub.v1.evt.{tenant_id}.{session_id}.{type}"
    assert (
        set(events["messages"])
        == set(events["parameters"]["type"]["enum"])
        == {c.short for c in EVENT_CLASSES}
    )
    for message in events["messages"].values():
        headers = _resolve(doc, message["headers"]["$ref"])
        assert {"Nats-Msg-Id", "traceparent"} <= set(headers["properties"])
    envelope = doc["components"]["schemas"]["EventBase"]
    assert {"specversion", "id", "source", "type", "time", "data", "tenantid", "sessionid"} <= set(
        envelope["properties"]
    )
    assert doc["operations"]["receive_events"]["action"] == "receive"
    send = doc["channels"]["sendCommand"]
    assert send["address"] == "zaphub.v1.cmd.message.send.{tenant_id}.{session_id}"
    assert doc["operations"]["send_sendCommand"]["action"] == "send"
    assert "Nats-Msg-Id" in _resolve(doc, send["messages"]["send_message"]["headers"]["$ref"])["required"]
    actions = doc["channels"]["sessionCommand"]["parameters"]["action"]["enum"]
    assert set(actions) == {a.value for a in SessionAction}


def test_channel_parameters_match_their_addresses() -> None:
    """Each {parameter} in an address is declared on its channel, and nothing else is."""
    for name, channel in _asyncapi()["channels"].items():
        if channel["address"] is None:
            continue
        in_address = set(re.findall(r"\{(\w+)\}", channel["address"]))
        assert in_address == set(channel.get("parameters", {})), name


def test_every_stream_and_bucket_is_described() -> None:
    """Each JetStream stream backs a channel, and each KV bucket's values have a schema or are internal."""
    doc = _asyncapi()
    described = {
        c["x-jetstream-stream"]["name"] for c in doc["channels"].values() if "x-jetstream-stream" in c
    }
    assert described == {spec.name for spec in streams.STREAMS}
    with_values = {bucket.name for bucket, _, _ in export.BUCKET_VALUES}
    internal = {streams.DISPATCH_BUCKET.name}  # cursors and attempt counts only the dispatcher reads
    assert with_values | internal == {bucket.name for bucket in streams.BUCKETS}


def test_request_operations_declare_their_replies() -> None:
    """Host and rate-limit requests name the reply messages a requester must expect."""
    operations = _asyncapi()["operations"]
    for name in ("send_hostRequest", "send_ratelimitAcquire", "send_ratelimitRelease", "send_ratelimitUsage"):
        assert operations[name]["reply"]["messages"], name
