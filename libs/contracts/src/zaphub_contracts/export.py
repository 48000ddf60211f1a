"""Generate the JSON Schemas and the AsyncAPI 3.0 document of the v1 bus contract from the models.

`python -m zaphub_contracts.export` writes them under libs/contracts/; `--check` only compares and
exits 1 naming the files that drifted (CI runs the comparison as a test).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from zaphub_contracts import streams
from zaphub_contracts.commands import SendMessage, SessionCommand
from zaphub_contracts.deadletters import DeadLetter
from zaphub_contracts.events import EVENT_CLASSES
from zaphub_contracts.host import HostError, HostOk, InjectFault, PairCodeRequest, SessionControl
from zaphub_contracts.ratelimit import (
    AcquireReply,
    AcquireRequest,
    RateLimitError,
    RateLimits,
    ReleaseReply,
    ReleaseRequest,
    UsageReply,
    UsageRequest,
)
from zaphub_contracts.sessions import DesiredSession, HandedOver, HostInfo, Lease

BASE_URL = "https://zaphub.dev/schemas/v1"
ROOT = Path(__file__).resolve().parents[2]  # libs/contracts

GROUPS: dict[str, dict[str, type[BaseModel]]] = {
    "commands": {"send_message": SendMessage, "session_command": SessionCommand},
    "events": {cls.short: cls for cls in EVENT_CLASSES},
    "host": {
        "host_ok": HostOk,
        "host_error": HostError,
        "session_control": SessionControl,
        "pair_code_request": PairCodeRequest,
        "inject_fault": InjectFault,
    },
    "ratelimit": {
        "acquire_request": AcquireRequest,
        "acquire_reply": AcquireReply,
        "release_request": ReleaseRequest,
        "release_reply": ReleaseReply,
        "usage_request": UsageRequest,
        "usage_reply": UsageReply,
        "rate_limits": RateLimits,
        "error": RateLimitError,
    },
    "state": {
        "desired_session": DesiredSession,
        "lease": Lease,
        "host_info": HostInfo,
        "handed_over": HandedOver,
    },
    "deadletters": {"dead_letter": DeadLetter},
}


def json_schema(group: str, name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URL}/{group}/{name}.json",
        **schema,
    }


def _params(*names: str) -> dict[str, Any]:
    return {name: {"description": f"{name.replace('_', ' ')} (a UUID or a name token)"} for name in names}


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: channels per subject pattern, messages from the models."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def message(name: str, group: str, model: type[BaseModel], summary: str) -> dict[str, str]:
        messages[name] = {
            "name": name,
            "title": model.__name__,
            "summary": summary,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "JetStream deduplication id"},
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                },
            },
            "payload": {"$ref": f"{BASE_URL}/{group}/{name}.json"},
        }
        return {"$ref": f"#/components/messages/{name}"}

    stream_of = {spec.name: spec for spec in streams.STREAMS}
    channels["sendCommand"] = {
        "address": "zaphub.v1.cmd.message.send.{tenant_id}.{session_id}",
        "description": f"Stream {streams.CMD.name} ({stream_of[streams.CMD.name].retention.value}).",
        "parameters": _params("tenant_id", "session_id"),
        "messages": {"sendMessage": message("send_message", "commands", SendMessage, "Send one message")},
    }
    channels["sessionCommand"] = {
        "address": "zaphub.v1.cmd.session.{action}.{tenant_id}.{session_id}",
        "description": f"Stream {streams.CMD.name}: start, stop, delete, restart, logout, pair_code.",
        "parameters": _params("action", "tenant_id", "session_id"),
        "messages": {
            "sessionCommand": message("session_command", "commands", SessionCommand, "Change a session")
        },
    }
    for cls in EVENT_CLASSES:
        channel = "event_" + cls.short.replace(".", "_")
        channels[channel] = {
            "address": "zaphub.v1.evt.{tenant_id}.{session_id}." + cls.short,
            "description": (
                f"Stream {streams.EVT.name}, kept {int(streams.EVT.max_age // 86400)} days. "
                f"CloudEvents 1.0 envelope of type `{cls.model_fields['type'].default}`."
            ),
            "parameters": _params("tenant_id", "session_id"),
            "messages": {cls.short: message(cls.short, "events", cls, f"The {cls.short} event")},
        }
        operations["receive_" + channel] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"Consume {cls.short} events of a tenant",
        }
    channels["deadLetters"] = {
        "address": "zaphub.v1.dlq.{tenant_id}.{session_id}",
        "description": f"Stream {streams.DLQ.name}: what could not be processed, with the reason.",
        "parameters": _params("tenant_id", "session_id"),
        "messages": {"deadLetter": message("dead_letter", "deadletters", DeadLetter, "A dead letter")},
    }
    for op in ("acquire", "release", "usage"):
        request = {"acquire": AcquireRequest, "release": ReleaseRequest, "usage": UsageRequest}[op]
        channels[f"ratelimit_{op}"] = {
            "address": f"zaphub.v1.ratelimit.{op}",
            "description": "Core NATS request/reply, queue group `ratelimiter`.",
            "messages": {f"{op}_request": message(f"{op}_request", "ratelimit", request, f"Rate-limit {op}")},
        }
    channels["hostRequest"] = {
        "address": "zaphub.v1.host.{session_id}.{op}",
        "description": "Core NATS request/reply answered only by the session's lease owner.",
        "parameters": _params("session_id", "op"),
        "messages": {
            "sendMessage": {"$ref": "#/components/messages/send_message"},
            "sessionControl": message("session_control", "host", SessionControl, "logout/restart/stop"),
        },
    }
    operations["send_sendCommand"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/sendCommand"},
        "summary": "The API publishes send commands with Nats-Msg-Id = message id",
    }
    operations["send_sessionCommand"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/sessionCommand"},
        "summary": "The API publishes session commands",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ZapHub bus contract",
            "version": "1.0.0",
            "description": (
                "Commands, CloudEvents and request/reply subjects of ZapHub v1 on NATS JetStream. "
                "v1 only grows by optional fields; consumers ignore fields they do not know."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[Path, str]:
    """Every generated file, by path, as it should be on disk."""
    files: dict[Path, str] = {}
    for group, models in GROUPS.items():
        for name, model in models.items():
            text = json.dumps(json_schema(group, name, model), indent=2, sort_keys=True) + "\n"
            files[ROOT / "schemas" / group / f"{name}.json"] = text
    files[ROOT / "asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=True, allow_unicode=True, width=100)
    return files


def drifted() -> list[Path]:
    return [path for path, text in render().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when files drifted")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted()
        for path in stale:
            print(f"drifted: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(render())} files under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
