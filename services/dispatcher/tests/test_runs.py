"""Which waiting commands of a session go to the host together (`take_run`)."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from nats.aio.msg import Msg

from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import ImageContent, MessageContent, TextContent
from zaphub_dispatcher.sends import PendingSend, take_run

TENANT, SESSION = UUID(int=1), UUID(int=2)
TEXT = TextContent(text="olá")
IMAGE = ImageContent(url="https://example.com/a.jpg")


def pending(seq: int, content: MessageContent = TEXT, padding: int = 0) -> PendingSend:
    command = SendMessage(
        tenant_id=TENANT,
        session_id=SESSION,
        issued_at=datetime.now(UTC),
        message_id=uuid4(),
        seq=seq,
        to="5511988887777@s.whatsapp.net",
        content=content,
    )
    data = command.model_dump_json().encode() + b" " * padding
    return PendingSend(Msg(_client=None, subject="s", data=data), command)  # type: ignore[arg-type]


def seqs(run: list[PendingSend]) -> list[int]:
    return [p.command.seq for p in run]


def test_a_run_is_the_head_and_the_commands_right_after_it() -> None:
    """A run ends at a gap in seq, and at a second command with the head's seq (a repeated publish)."""
    assert seqs(take_run([pending(4), pending(5), pending(6), pending(8)], 1 << 20)) == [4, 5, 6]
    assert seqs(take_run([pending(4), pending(4), pending(5)], 1 << 20)) == [4]


def test_media_goes_alone() -> None:
    """An upload can take seconds: media neither joins a run nor takes others with it."""
    assert seqs(take_run([pending(1), pending(2), pending(3, IMAGE), pending(4)], 1 << 20)) == [1, 2]
    assert seqs(take_run([pending(3, IMAGE), pending(4)], 1 << 20)) == [3]


def test_a_run_fits_its_byte_budget_and_the_head_always_goes() -> None:
    """Commands join while the run's bytes fit; a head bigger than the budget still goes, alone."""
    lane = [pending(seq, padding=1000) for seq in range(1, 11)]
    one = len(lane[0].msg.data)
    assert seqs(take_run(lane, 3 * one)) == [1, 2, 3]
    assert seqs(take_run(lane, one // 2)) == [1]
