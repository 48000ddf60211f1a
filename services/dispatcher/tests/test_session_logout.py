"""Session commands against a real nats-server and a stand-in host: logout keeps the session desired
(it pairs again), and a host's refusal is retried or dead-lettered, never acked silently."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SessionAction, SessionCommand
from zaphub_contracts.sessions import DesiredSession, desired_key
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.session_commands import SessionCommandPipeline
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode


@dataclass
class Meta:
    num_delivered: int = 1


@dataclass
class StubMsg:
    """A fetched command: what the pipeline reads of it, and how it was settled."""

    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reply: str = ""
    metadata: Meta = field(default_factory=Meta)
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append("nak")


def command_msg(action: SessionAction, tenant: Any, session: Any) -> StubMsg:
    cmd = SessionCommand(tenant_id=tenant, session_id=session, issued_at=datetime.now(UTC), action=action)
    return StubMsg(subjects.session_command(action, tenant, session), cmd.model_dump_json().encode())


async def test_logout_keeps_the_session_desired_and_a_refusal_is_not_acked_silently(nats_url: str) -> None:
    """Logout reaches the host with the desired key still there; a permanent refusal is dead-lettered,
    a transient one retried."""
    bus = await Bus.connect(nats_url, name="test", source="/test")
    try:
        await bus.ensure_streams()
        desired = await bus.kv(streams.SESSIONS_BUCKET)
        pipeline = SessionCommandPipeline(bus, desired, RetryPolicy(5, 0.1, 1.0), host_timeout=2.0)
        tenant, session = uuid4(), uuid4()
        key = desired_key(tenant, session)
        record = DesiredSession(
            tenant_id=tenant, session_id=session, name="s", requested_at=datetime.now(UTC)
        )
        await desired.put(key, encode(record))
        answers = [
            {"status": "ok", "host_id": "h1"},
            {"status": "error", "reason": "unsupported", "detail": "no"},
            {"status": "error", "reason": "session_not_connected"},
        ]
        key_at_request: list[bool] = []

        async def host(msg: Msg) -> None:
            try:
                await desired.get(key)
                key_at_request.append(True)
            except Exception:
                key_at_request.append(False)
            await msg.respond(json.dumps(answers.pop(0)).encode())

        await bus.nc.subscribe(subjects.host(session, "logout"), cb=host)
        dead = await bus.nc.subscribe(subjects.dead_letter(tenant, session))
        await bus.nc.flush()

        ok = command_msg(SessionAction.LOGOUT, tenant, session)
        await pipeline.process(ok)  # type: ignore[arg-type]
        assert ok.settled == ["ack"] and key_at_request == [True]
        assert (await desired.get(key)).value  # still desired: it pairs again

        refused = command_msg(SessionAction.LOGOUT, tenant, session)
        await pipeline.process(refused)  # type: ignore[arg-type]
        assert refused.settled == ["ack"]
        letter = json.loads((await dead.next_msg(timeout=5)).data)
        assert letter["reason"] == "unsupported"

        offline = command_msg(SessionAction.LOGOUT, tenant, session)
        await pipeline.process(offline)  # type: ignore[arg-type]
        assert offline.settled == ["nak"]
    finally:
        await bus.close()
