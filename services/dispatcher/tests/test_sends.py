"""The send pipeline's turns on a real JetStream, with fake ratelimiter and session-hosts: what a send
command's deliveries are told (ack, NAK and its delay), which events and dead letters come of it, and
what reaches WhatsApp in which order."""

import inspect
import json
import time

import pytest

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.sessions import whatsapp_message_id
from zaphub_dispatcher import metrics
from zaphub_dispatcher.order import OrderGate
from zaphub_dispatcher.sends import ORDER_LOOKS, RATELIMITER_RETRY

from .conftest import (
    OK,
    REAL_CLIENTS,
    TO,
    Dispatcher,
    HostAnswer,
    RateLimiterUnavailable,
    StartDispatcher,
    command,
    denied,
    eventually,
    host_error,
)

EARLY = 0.01  # seconds a redelivery may seem early by: the server's timers and ours differ a little


def ids(*commands: SendMessage) -> list:
    return [c.message_id for c in commands]


def backoff_bounds(attempt: int, base: float, cap: float) -> tuple[float, float]:
    """The delays full jitter may pick after `attempt` failed attempts (docs/delivery.md)."""
    return base / 10, min(cap, base * 2 ** (attempt - 1))


def assert_redelivered_after(d: Dispatcher, sent: SendMessage) -> None:
    """Each redelivery of `sent` came no sooner than the delay of the NAK before it."""
    deliveries, naks = d.deliveries(sent), d.verdicts(sent, "nak")
    for before, nak, after in zip(deliveries, naks, deliveries[1:], strict=False):
        assert after.at - before.at >= (nak.delay or 0) - EARLY


def test_the_fakes_have_the_real_clients_methods() -> None:
    """Each fake peer answers the calls the dispatcher makes of the client it stands in for."""
    for fake, real in REAL_CLIENTS.items():
        for name, method in inspect.getmembers(real, inspect.iscoroutinefunction):
            if not name.startswith("_"):
                assert inspect.signature(getattr(fake, name)).parameters.keys() == (
                    inspect.signature(method).parameters.keys()
                ), f"{fake.__name__}.{name}"


async def test_a_command_next_in_order_is_sent_acked_and_announced(start_dispatcher: StartDispatcher) -> None:
    """The session's next command goes to the host, `message.sent` names its WhatsApp id, and it is
    acked once; the one after it follows."""
    d = await start_dispatcher()
    first = await d.publish(1)
    await d.acked(first)

    (sent,) = d.observer.of("message.sent", first.message_id)
    assert (sent.tenantid, sent.sessionid) == (d.tenant, d.session)
    assert sent.data.whatsapp_id == whatsapp_message_id(first.message_id) and sent.data.to == TO
    assert [v.kind for v in d.verdicts(first)] == ["ack"] and len(d.deliveries(first)) == 1

    second = await d.publish(2)
    await d.acked(second)
    assert d.host.seqs(d.session) == [1, 2]
    assert d.observer.of("message.failed") == [] and d.observer.of("message.rate_limited") == []


async def test_rate_limited_send_waits_exactly_retry_after_and_is_announced_once(
    start_dispatcher: StartDispatcher,
) -> None:
    """A denied send is NAKed with the exact `retry_after`, comes back no sooner, and gets one
    `message.rate_limited` however often it is denied; then it is sent."""
    d = await start_dispatcher()
    d.limiter.script(d.session, denied(0.2), denied(0.2))
    first = await d.publish(1)
    await d.acked(first)

    assert [v.delay for v in d.verdicts(first, "nak")] == [0.2, 0.2]
    assert [x.number for x in d.deliveries(first)] == [1, 2, 3]
    assert_redelivered_after(d, first)
    (limited,) = d.observer.of("message.rate_limited")
    assert limited.data.message_id == first.message_id
    assert (limited.data.retry_after, limited.data.window) == (0.2, "minute")
    assert d.observer.of("message.sent", first.message_id)
    assert d.host.seqs(d.session) == [1]


async def test_rate_limit_waits_are_not_attempts(start_dispatcher: StartDispatcher) -> None:
    """Deliveries spent waiting for the rate limit do not count: a send that then fails on the host
    gets all its attempts."""
    d = await start_dispatcher(max_attempts=2)
    d.limiter.script(d.session, denied(0.05), denied(0.05))
    no_host = host_error(FailureReason.NO_HOST)
    d.host.script(d.session, [no_host], [no_host])
    first = await d.publish(1)
    await d.acked(first)

    (failed,) = d.observer.of("message.failed", first.message_id)
    assert failed.data.reason == FailureReason.ATTEMPTS_EXHAUSTED and failed.data.attempts == 2
    assert len(d.deliveries(first)) == 4


async def test_a_transient_failure_backs_off_until_attempts_run_out_then_fails_and_is_dead_lettered(
    start_dispatcher: StartDispatcher,
) -> None:
    """No host for the session: NAKs with jittered exponential backoff, at most `max_attempts`
    deliveries, then `message.failed` (attempts_exhausted) and a copy on the DLQ; each failed attempt
    gives its token back."""
    base, cap = 0.05, 0.08
    d = await start_dispatcher(max_attempts=3, base_delay=base, max_delay=cap)
    d.host.script(d.session, *[[host_error(FailureReason.NO_HOST, "no session-host")]] * 3)
    first = await d.publish(1)
    await d.acked(first)

    naks = d.verdicts(first, "nak")
    assert len(naks) == 2 and len(d.deliveries(first)) == 3
    for attempt, nak in enumerate(naks, start=1):
        low, high = backoff_bounds(attempt, base, cap)
        assert nak.delay is not None and low <= nak.delay <= high
    assert_redelivered_after(d, first)

    (failed,) = d.observer.of("message.failed", first.message_id)
    assert failed.data.reason == FailureReason.ATTEMPTS_EXHAUSTED and failed.data.attempts == 3
    assert "no_host" in failed.data.detail
    (letter,) = d.observer.dead_letters
    assert (letter.reason, letter.attempts, letter.component) == (
        FailureReason.ATTEMPTS_EXHAUSTED,
        3,
        "dispatcher",
    )
    assert letter.original_subject == subjects.send_command(d.tenant, d.session)
    assert letter.original_stream_seq == d.stream_seqs[first.message_id]
    assert SendMessage.model_validate_json(letter.payload) == first
    assert d.limiter.released == [ids(first)] * 3
    assert d.observer.of("message.sent") == []


async def test_a_send_whose_outcome_is_unknown_keeps_its_token_and_is_retried(
    start_dispatcher: StartDispatcher,
) -> None:
    """A host that did not answer may have sent: the token stays spent and the command is retried."""
    d = await start_dispatcher()
    d.host.script(d.session, HostAnswer.error(FailureReason.TIMEOUT, "the session-host did not answer"))
    first = await d.publish(1)
    await d.acked(first)

    assert len(d.verdicts(first, "nak")) == 1
    assert d.limiter.released == []
    assert d.observer.of("message.sent", first.message_id) and d.observer.of("message.failed") == []


async def test_a_permanent_failure_fails_at_once_with_its_reason(start_dispatcher: StartDispatcher) -> None:
    """A recipient not on WhatsApp: `message.failed` with that reason on the first delivery, acked,
    no retry and no dead letter; the session's next command goes on."""
    d = await start_dispatcher()
    reason = FailureReason.RECIPIENT_NOT_ON_WHATSAPP
    d.host.script(d.session, [host_error(reason, "5511988887777 is not on WhatsApp")])
    first = await d.publish(1)
    await d.acked(first)

    (failed,) = d.observer.of("message.failed", first.message_id)
    assert failed.data.reason == reason and failed.data.detail == "5511988887777 is not on WhatsApp"
    assert [v.kind for v in d.verdicts(first)] == ["ack"] and len(d.deliveries(first)) == 1
    assert d.observer.dead_letters == []
    assert d.limiter.released == [ids(first)]

    second = await d.publish(2)
    await d.acked(second)
    assert d.observer.of("message.sent", second.message_id)


async def test_a_command_behind_a_gap_waits_in_its_lane_for_the_missing_one(
    start_dispatcher: StartDispatcher,
) -> None:
    """Seq 2 fetched before seq 1 waits in the dispatcher, not in JetStream, and goes right after it."""
    d = await start_dispatcher()
    second = await d.publish(2)
    await eventually(lambda: d.deliveries(second), "seq 2 fetched")
    first = await d.publish(1)
    await d.acked(first, second)

    assert d.host.seqs(d.session) == [1, 2]
    assert len(d.deliveries(second)) == 1 and d.verdicts(second, "nak") == []


async def test_commands_behind_a_lasting_gap_look_again_then_go_back_and_follow_once_it_is_filled(
    start_dispatcher: StartDispatcher,
) -> None:
    """Seq 2 looks for seq 1 for about 1.6 s, then goes back to JetStream for a short while, again and
    again, with nothing sent; once seq 1 comes both go, in order."""
    d = await start_dispatcher()
    second = await d.publish(2)
    (nak, *_) = await eventually(lambda: d.verdicts(second, "nak"), "seq 2 sent back", within=10)

    looks = sum(min(0.02 * 2.0**n, 0.5) for n in range(1, ORDER_LOOKS + 1))
    assert nak.at - d.deliveries(second)[0].at >= looks - EARLY
    assert nak.delay == pytest.approx(0.04)  # short: the head is usually in flight on another replica
    assert d.host.requests == [] and d.observer.events == []

    first = await d.publish(1)
    await d.acked(first, second)
    assert d.host.seqs(d.session) == [1, 2]


async def test_a_command_behind_a_rate_limited_one_waits_with_it(start_dispatcher: StartDispatcher) -> None:
    """Seq 2 arriving while seq 1 waits for the rate limit goes back for as long, with its own
    `message.rate_limited`, and is sent after seq 1."""
    d = await start_dispatcher()
    d.limiter.script(d.session, denied(0.5, window="hour"))
    first = await d.publish(1)
    await eventually(lambda: d.verdicts(first, "nak"), "seq 1 rate limited")
    second = await d.publish(2)
    (nak, *_) = await eventually(lambda: d.verdicts(second, "nak"), "seq 2 sent back")

    assert nak.delay is not None and 0 < nak.delay <= 0.5 + 0.01
    (limited,) = d.observer.of("message.rate_limited", second.message_id)
    assert limited.data.window == "hour"
    await d.acked(first, second)
    assert d.host.seqs(d.session) == [1, 2]
    # Seq 2 asked for no token while seq 1 waited: the first two requests are seq 1's.
    assert [request[0] for request in d.limiter.acquired[:2]] == ids(first, first)


async def test_a_waiting_session_does_not_hold_back_another(start_dispatcher: StartDispatcher) -> None:
    """One session waiting for its rate limit leaves the tenant's other sessions sending."""
    d = await start_dispatcher()
    waiting, other = d.sessions
    d.limiter.script(waiting, denied(30.0))
    held = await d.publish(1, session=waiting)
    await eventually(lambda: d.verdicts(held, "nak", "ack"), "the first session rate limited (parked)")
    free = await d.publish(1, session=other)
    await d.acked(free)

    assert d.host.seqs(other) == [1] and d.host.seqs(waiting) == []


async def test_a_sessions_waiting_commands_go_as_one_run(start_dispatcher: StartDispatcher) -> None:
    """Five commands waiting for one session take one rate-limit request and one host request, in
    order, and each gets its own `message.sent` and ack."""
    d = await start_dispatcher(fetching=False)
    run = [await d.publish(seq) for seq in range(1, 6)]
    d.start_fetching()
    await d.acked(*run)

    assert d.limiter.acquired == [ids(*run)]
    assert d.host.requests == [run]
    for sent in run:
        assert len(d.observer.of("message.sent", sent.message_id)) == 1
        assert [v.kind for v in d.verdicts(sent)] == ["ack"]


async def test_a_partly_granted_run_sends_the_granted_and_the_rest_wait_retry_after(
    start_dispatcher: StartDispatcher,
) -> None:
    """Two of five granted: those two go at once; the first denied waits exactly `retry_after`, the
    ones behind it a little longer, each announced as rate limited once; then all go, in order."""
    d = await start_dispatcher(fetching=False)
    run = [await d.publish(seq) for seq in range(1, 6)]
    d.limiter.script(d.session, denied(0.2, granted=2))
    d.start_fetching()
    await d.acked(*run)

    assert d.host.requests[0] == run[:2]
    assert d.host.seqs(d.session) == [1, 2, 3, 4, 5]
    assert [v.delay for v in d.verdicts(run[2], "nak")] == [0.2]
    for behind in run[3:]:
        assert [v.delay for v in d.verdicts(behind, "nak")] == [pytest.approx(0.21)]
    for sent in run:
        limited = d.observer.of("message.rate_limited", sent.message_id)
        assert len(limited) == (sent.seq >= 3)
        assert_redelivered_after(d, sent)


async def test_a_failure_inside_a_run_sends_those_before_it_and_holds_back_those_after(
    start_dispatcher: StartDispatcher,
) -> None:
    """The host sends two of five, then the session drops: the two are sent and acked, the third is
    retried with backoff, the tokens of the three are given back, and all five go out in order."""
    base, cap = 0.05, 0.1
    d = await start_dispatcher(fetching=False, base_delay=base, max_delay=cap)
    run = [await d.publish(seq) for seq in range(1, 6)]
    d.host.script(d.session, [OK, OK, host_error(FailureReason.SESSION_NOT_CONNECTED)])
    d.start_fetching()
    await d.acked(*run)

    assert d.host.seqs(d.session) == [1, 2, 3, 4, 5]
    for sent in run[:2]:
        assert [v.kind for v in d.verdicts(sent)] == ["ack"]
    (nak,) = d.verdicts(run[2], "nak")
    low, high = backoff_bounds(1, base, cap)
    assert nak.delay is not None and low <= nak.delay <= high
    assert d.limiter.released == [ids(*run[2:])]
    assert d.observer.of("message.failed") == []
    assert all(d.observer.of("message.sent", sent.message_id) for sent in run)


async def test_an_unavailable_ratelimiter_sends_the_run_back_for_a_second(
    start_dispatcher: StartDispatcher,
) -> None:
    """No ratelimiter answering is nobody's failure: the command comes back after RATELIMITER_RETRY,
    with no event, and is sent."""
    d = await start_dispatcher()
    d.limiter.script(d.session, RateLimiterUnavailable("no ratelimiter answered"))
    first = await d.publish(1)
    await d.acked(first)

    assert [v.delay for v in d.verdicts(first, "nak")] == [RATELIMITER_RETRY]
    assert_redelivered_after(d, first)
    assert d.observer.of("message.rate_limited") == [] and d.observer.of("message.failed") == []
    assert d.observer.of("message.sent", first.message_id)


async def test_a_command_whose_outcome_is_already_final_is_acked_and_not_sent_again(
    start_dispatcher: StartDispatcher,
) -> None:
    """After another replica moved the cursor to 3, a delivery of seq 3 is acked without a send or
    an event, and seq 4 goes next."""
    d = await start_dispatcher()
    first = await d.publish(1)
    await d.acked(first)
    other_replica = OrderGate(await d.bus.kv(streams.DISPATCH_BUCKET))
    await other_replica.complete(d.session, 2)
    await other_replica.complete(d.session, 3)

    again, fourth = await d.publish(3), await d.publish(4)
    await d.acked(again, fourth)
    assert d.host.seqs(d.session) == [1, 4]
    assert [e.short for e in d.observer.events if e.data.message_id == again.message_id] == []


async def test_a_malformed_command_is_dead_lettered_and_acked(start_dispatcher: StartDispatcher) -> None:
    """Unreadable bytes, or a body naming another session than its subject: a dead letter with the
    reason, an ack, and no event; each is counted once as dead-lettered."""
    d = await start_dispatcher()
    poisoned = metrics.DEAD_LETTERS.labels(FailureReason.MALFORMED_COMMAND.value)
    before = poisoned._value.get()
    garbage = await d.publish_raw(b"not a command")
    stray = await d.publish_raw(command(d.tenant, d.sessions[1], 1).model_dump_json().encode())
    for seq in (garbage, stray):
        await eventually(lambda seq=seq: d.observer.wire.of(seq, "ack"), f"stream message {seq} acked")

    letters = {letter.original_stream_seq: letter for letter in d.observer.dead_letters}
    assert letters.keys() == {garbage, stray}
    assert all(letter.reason == FailureReason.MALFORMED_COMMAND for letter in letters.values())
    assert letters[garbage].payload == "not a command"
    assert "different sessions" in letters[stray].detail
    assert d.observer.events == [] and d.host.requests == []
    assert poisoned._value.get() == before + 2


async def test_a_malformed_command_at_its_turn_moves_the_cursor_so_the_session_goes_on(
    start_dispatcher: StartDispatcher,
) -> None:
    """A malformed seq 2 whose session and seq can be read waits for seq 1, is dead-lettered and
    acked, and the cursor moves past it: seq 3 is sent, and nothing else of the session stalls."""
    d = await start_dispatcher()
    broken = command(d.tenant, d.session, 2).model_dump(mode="json") | {"content": {"type": "nope"}}
    bad = await d.publish_raw(json.dumps(broken).encode())
    third = await d.publish(3)
    first = await d.publish(1)
    await d.acked(first, third)
    await eventually(lambda: d.observer.wire.of(bad, "ack"), "the malformed command acked")
    assert d.host.seqs(d.session) == [1, 3]
    (letter,) = d.observer.dead_letters
    assert (letter.original_stream_seq, letter.reason) == (bad, FailureReason.MALFORMED_COMMAND)
    cursor = await OrderGate(await d.bus.kv(streams.DISPATCH_BUCKET)).read(d.session, fresh=True)
    assert cursor.done == 3


async def test_a_long_rate_limit_wait_is_parked_off_the_consumer_and_sent_when_it_ends(
    start_dispatcher: StartDispatcher,
) -> None:
    """Denied for 6 s, beyond PARK_AFTER: the command and the one behind it are acked at once (nothing
    of the session stays pending on the shared consumer), come back from JetStream no sooner than
    6 s later, and go out once, in order."""
    d = await start_dispatcher()
    d.limiter.script(d.session, denied(6.0))
    first, second = await d.publish(1), await d.publish(2)
    started = time.monotonic()
    await eventually(lambda: d.verdicts(first, "ack") and d.verdicts(second, "ack"), "both parked")
    assert time.monotonic() - started < 3 and d.host.seqs(d.session) == []
    await eventually(lambda: d.host.seqs(d.session) == [1, 2], "both sent after the wait", within=20)
    assert time.monotonic() - started >= 6.0 - EARLY
    await eventually(lambda: d.observer.of("message.sent", first.message_id), "first announced as sent")
    assert len(d.observer.of("message.sent", first.message_id)) == 1
