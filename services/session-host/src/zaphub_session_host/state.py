"""The session state machine: pure, no I/O; the runner feeds it what the transport reports.

States are the contract's `SessionStatus` minus `queued` (a queued session has no host yet).
A runner starts in `connecting`. `closed` means the session stopped on this host (drain,
lease handed over, desired key removed); `restarted` is an operator's restart.

| from \\ event | qr_shown   | connected | connection_lost | logged_out | failed | restarted  | closed       |
|--------------|------------|-----------|-----------------|------------|--------|------------|--------------|
| connecting   | qr_pending | connected | disconnected    | logged_out | failed | connecting | disconnected |
| qr_pending   | qr_pending | connected | disconnected    | logged_out | failed | connecting | disconnected |
| connected    | -          | -         | disconnected    | logged_out | failed | connecting | disconnected |
| disconnected | -          | connected | disconnected    | logged_out | failed | connecting | disconnected |
| logged_out   | -          | -         | -               | -          | -      | connecting | logged_out   |
| failed       | -          | -         | -               | -          | -      | connecting | failed       |

`-` is an invalid transition: the machine raises `InvalidTransition` and keeps its state.
"""

from dataclasses import dataclass
from enum import StrEnum

from zaphub_contracts.failures import FailureReason
from zaphub_contracts.statuses import SessionStatus


class SessionEvent(StrEnum):
    QR_SHOWN = "qr_shown"
    CONNECTED = "connected"
    CONNECTION_LOST = "connection_lost"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"
    RESTARTED = "restarted"
    CLOSED = "closed"


S = SessionStatus
E = SessionEvent

_LIVE = {
    E.CONNECTION_LOST: S.DISCONNECTED,
    E.LOGGED_OUT: S.LOGGED_OUT,
    E.FAILED: S.FAILED,
    E.RESTARTED: S.CONNECTING,
    E.CLOSED: S.DISCONNECTED,
}
TRANSITIONS: dict[SessionStatus, dict[SessionEvent, SessionStatus]] = {
    S.CONNECTING: {E.QR_SHOWN: S.QR_PENDING, E.CONNECTED: S.CONNECTED, **_LIVE},
    S.QR_PENDING: {E.QR_SHOWN: S.QR_PENDING, E.CONNECTED: S.CONNECTED, **_LIVE},
    S.CONNECTED: dict(_LIVE),
    S.DISCONNECTED: {E.CONNECTED: S.CONNECTED, **_LIVE},
    S.LOGGED_OUT: {E.RESTARTED: S.CONNECTING, E.CLOSED: S.LOGGED_OUT},
    S.FAILED: {E.RESTARTED: S.CONNECTING, E.CLOSED: S.FAILED},
}
STATES: frozenset[SessionStatus] = frozenset(TRANSITIONS)


class InvalidTransition(Exception):
    def __init__(self, state: SessionStatus, event: SessionEvent) -> None:
        super().__init__(f"{event.value} is not allowed in state {state.value}")
        self.state = state
        self.event = event


@dataclass(frozen=True, slots=True)
class Transition:
    before: SessionStatus
    after: SessionStatus
    event: SessionEvent

    @property
    def changed(self) -> bool:
        return self.before is not self.after


class SessionMachine:
    """Current state of one session and the rules for leaving it."""

    __slots__ = ("state",)

    def __init__(self, state: SessionStatus = SessionStatus.CONNECTING) -> None:
        if state not in STATES:
            raise ValueError(f"{state.value} is not a host-side session state")
        self.state = state

    def can(self, event: SessionEvent) -> bool:
        return event in TRANSITIONS[self.state]

    def apply(self, event: SessionEvent) -> Transition:
        after = TRANSITIONS[self.state].get(event)
        if after is None:
            raise InvalidTransition(self.state, event)
        transition = Transition(self.state, after, event)
        self.state = after
        return transition

    @property
    def can_send(self) -> bool:
        return self.state is SessionStatus.CONNECTED

    def send_refusal(self) -> FailureReason:
        """Why a send cannot go out in the current state (only meaningful when not `can_send`)."""
        if self.state is SessionStatus.LOGGED_OUT:
            return FailureReason.SESSION_LOGGED_OUT
        return FailureReason.SESSION_NOT_CONNECTED

    @property
    def can_pair(self) -> bool:
        return self.state in (SessionStatus.CONNECTING, SessionStatus.QR_PENDING)
