"""The session state machine, pure."""

import pytest

from zaphub_contracts.failures import FailureReason
from zaphub_contracts.statuses import SessionStatus as S
from zaphub_session_host.state import (
    STATES,
    TRANSITIONS,
    InvalidTransition,
    SessionMachine,
)
from zaphub_session_host.state import (
    SessionEvent as E,
)


def test_states_are_session_statuses_without_queued() -> None:
    """The host-side states are exactly the contract's statuses minus `queued`."""
    assert set(S) - STATES == {S.QUEUED}


def test_new_session_goes_from_qr_to_connected_and_back_on_reconnect() -> None:
    """A new session shows QRs, connects once paired, and a dropped connection reconnects."""
    m = SessionMachine()
    assert m.state is S.CONNECTING
    assert m.apply(E.QR_SHOWN).after is S.QR_PENDING
    assert not m.apply(E.QR_SHOWN).changed  # a fresh QR keeps the state
    assert m.apply(E.CONNECTED).after is S.CONNECTED
    assert m.can_send
    assert m.apply(E.CONNECTION_LOST).after is S.DISCONNECTED
    assert m.send_refusal() is FailureReason.SESSION_NOT_CONNECTED
    assert m.apply(E.CONNECTED).after is S.CONNECTED


def test_logged_out_session_only_leaves_by_restart() -> None:
    """After logout nothing but a restart moves the session, and sends are refused as logged out."""
    m = SessionMachine(S.CONNECTED)
    m.apply(E.LOGGED_OUT)
    assert m.send_refusal() is FailureReason.SESSION_LOGGED_OUT
    for event in (E.CONNECTED, E.QR_SHOWN, E.CONNECTION_LOST, E.FAILED):
        with pytest.raises(InvalidTransition):
            m.apply(event)
        assert m.state is S.LOGGED_OUT
    assert m.apply(E.CLOSED).after is S.LOGGED_OUT
    assert m.apply(E.RESTARTED).after is S.CONNECTING


def test_a_connected_session_shows_no_qr() -> None:
    """A QR while connected is an invalid transition that leaves the state alone."""
    m = SessionMachine(S.CONNECTED)
    with pytest.raises(InvalidTransition):
        m.apply(E.QR_SHOWN)
    assert m.state is S.CONNECTED


def test_every_state_can_be_restarted_and_closed() -> None:
    """Restart and close are allowed from every state, so an operator can always recover a session."""
    for state, moves in TRANSITIONS.items():
        assert E.RESTARTED in moves and E.CLOSED in moves, state
