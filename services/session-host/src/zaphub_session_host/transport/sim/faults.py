"""Faults of the simulator: process-wide from `ZAPHUB_SIM_FAULTS`, per session from the `fault` op.

`ZAPHUB_SIM_FAULTS` is either a JSON object or `key=value` pairs joined by commas, e.g.
`send_delay=0.2,fail_rate=0.05,drop_every=60`:

| key          | effect                                                                  |
|--------------|-------------------------------------------------------------------------|
| `send_delay` | every send takes this many seconds                                      |
| `fail_rate`  | this fraction of sends fails with a transient transport error           |
| `drop_every` | a connected session drops about this often (seconds, exponential) and reconnects |

Per session, the `fault` host op (`InjectFault`) drops the connection, bans it for a while, slows
its sends, or fails its next N sends; `clear` undoes them. `inbound` (handled by the connection) makes
N messages from a simulated contact arrive, for tests of the inbound path that need no second session.
"""

import json
import random
from dataclasses import dataclass, fields
from typing import Any

from zaphub_contracts.host import FaultKind, InjectFault
from zaphub_session_host.transport.base import TransientSendError


class SimFaultSpecError(ValueError):
    """`ZAPHUB_SIM_FAULTS` could not be read."""


@dataclass(frozen=True, slots=True)
class SimFaults:
    send_delay: float = 0.0
    fail_rate: float = 0.0
    drop_every: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> "SimFaults":
        spec = spec.strip()
        if not spec:
            return cls()
        raw: dict[str, Any]
        if spec.startswith("{"):
            try:
                raw = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS is not valid JSON: {exc}") from exc
        else:
            raw = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, sep, value = part.partition("=")
                if not sep:
                    raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: {part!r} is not key=value")
                raw[key.strip()] = value.strip()
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: unknown {sorted(unknown)}, known {sorted(known)}")
        try:
            values = {k: float(v) for k, v in raw.items()}
        except (TypeError, ValueError) as exc:
            raise SimFaultSpecError(f"ZAPHUB_SIM_FAULTS: values must be numbers: {exc}") from exc
        if any(v < 0 for v in values.values()) or values.get("fail_rate", 0.0) > 1:
            raise SimFaultSpecError("ZAPHUB_SIM_FAULTS: values must be >= 0 and fail_rate <= 1")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Drop:
    """How a connection drops for a fault: why, and after how long it reconnects (None: backoff)."""

    reason: str
    reconnect_after: float | None


@dataclass(slots=True)
class SessionFaults:
    """What one session's sends and links meet: the process-wide faults plus those injected into it."""

    process: SimFaults
    rng: random.Random
    slow: float = 0.0
    fail_next: int = 0
    banned_until: float = 0.0  # loop time

    def send_delay(self) -> float:
        return max(self.slow, self.process.send_delay)

    def fail_send(self) -> None:
        """Raise the transient error this send meets, if it meets one."""
        if self.fail_next > 0:
            self.fail_next -= 1
            raise TransientSendError("send failed (simulated fault)")
        if self.process.fail_rate and self.rng.random() < self.process.fail_rate:
            raise TransientSendError("send failed (simulated fail_rate)")

    def inject(self, fault: InjectFault, now: float) -> Drop | None:
        """Apply an injected fault at loop time `now`; a drop or a ban says how the connection drops."""
        match fault.kind:
            case FaultKind.DROP:
                return Drop("connection dropped (simulated fault)", None)
            case FaultKind.BAN:
                self.banned_until = now + fault.seconds
                return Drop(f"temporarily banned for {fault.seconds:g} s (simulated)", fault.seconds)
            case FaultKind.SLOW:
                self.slow = fault.seconds
            case FaultKind.FAIL_SENDS:
                self.fail_next = fault.count
            case FaultKind.CLEAR:
                self.slow = 0.0
                self.fail_next = 0
                self.banned_until = 0.0
        return None
