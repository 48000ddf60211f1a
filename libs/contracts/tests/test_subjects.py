"""Subjects: builders and the parser agree, and anything outside the v1 grammar is refused."""

from uuid import UUID, uuid4

import pytest

from zaphub_contracts import subjects
from zaphub_contracts.commands import SessionAction


def test_command_and_dead_letter_subjects_parse_back_to_their_route() -> None:
    """send, session, group and dead-letter subjects built by the builders parse to the same kind and ids."""
    tenant, session = uuid4(), uuid4()
    assert subjects.parse(subjects.send_command(tenant, session)) == subjects.Routed("send", tenant, session)
    for action in SessionAction:
        routed = subjects.parse(subjects.session_command(action, tenant, session))
        assert routed == subjects.Routed(f"session.{action.value}", tenant, session)
    assert subjects.parse(subjects.group_command(tenant, session)) == subjects.Routed(
        "group", tenant, session
    )
    assert subjects.parse(subjects.dead_letter(tenant, session)) == subjects.Routed("dlq", tenant, session)


def test_subjects_built_by_the_builders_fall_under_their_wildcards() -> None:
    """Every built subject starts with the prefix of the wildcard its stream or consumer listens on."""
    tenant, session = uuid4(), uuid4()
    pairs = [
        (subjects.send_command(tenant, session), subjects.SEND_ALL),
        (subjects.session_command(SessionAction.STOP, tenant, session), subjects.SESSION_CMD_ALL),
        (subjects.group_command(tenant, session), subjects.GROUP_CMD_ALL),
        (subjects.event(tenant, session, "message.sent"), subjects.tenant_events(tenant)),
        (subjects.dead_letter(tenant, session), subjects.DLQ_ALL),
    ]
    for subject, wildcard in pairs:
        assert subject.startswith(wildcard.removesuffix(">")), (subject, wildcard)


T, S = UUID(int=1), UUID(int=2)


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "other",
        f"zaphub.v2.cmd.message.send.{T}.{S}",
        f"zaphub.v1.cmd.message.send.not-a-uuid.{S}",
        f"zaphub.v1.cmd.message.send.{T}.not-a-uuid",
        f"zaphub.v1.cmd.message.send.{T}",
        f"zaphub.v1.cmd.message.send.{T}.{S}.extra",
        f"zaphub.v1.cmd.message.delete.{T}.{S}",
        f"zaphub.v1.cmd.session.{T}.{S}",
        f"zaphub.v1.cmd.group.{T}",
        f"zaphub.v1.cmd.group.{T}.{S}.extra",
        f"zaphub.v1.evt.{T}.{S}",
        "zaphub.v1.evt.a",
        f"zaphub.v1.evt.{T}.x.message.sent",
        f"zaphub.v1.dlq.{T}",
        f"zaphub.v1.dlq.{T}.{S}.more",
        f"zaphub.v1.host.{S}.send",
        "zaphub.v1.ratelimit.acquire",
        f"ZAPHUB.V1.cmd.message.send.{T}.{S}",
    ],
)
def test_malformed_subjects_are_rejected(subject: str) -> None:
    """Subjects outside the v1 command, event and dead-letter grammar raise SubjectError."""
    with pytest.raises(subjects.SubjectError):
        subjects.parse(subject)


def test_tokens_of_an_unparsable_subject_read_unknown() -> None:
    """Dead-lettering something unparsable still yields tokens for the DLQ subject."""
    assert subjects.tenant_session_tokens("garbage") == (subjects.UNKNOWN, subjects.UNKNOWN)
