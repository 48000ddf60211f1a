"""When a tenant's webhook POSTs fill its slots, when each of its other deliveries is looked at again.

A delivery that must wait is NAK'd with a delay. Looked at again every second or two, a tenant with
thousands of deliveries behind a black-holed endpoint made the dispatcher re-read thousands of messages
a second (70,000 re-looks in 20 s in the fairness bench), on the cores every other tenant's sends use.
Spaced by how fast the tenant's slots free, its re-looks cost what its endpoints can take, not what its
backlog holds.
"""

import random
from dataclasses import dataclass, field
from uuid import UUID

__all__ = ["Pacer"]

# What a POST is assumed to take before any of the tenant's has finished: a quick endpoint's, since a
# guess too long would space a healthy tenant's first burst out for seconds, and a slow endpoint shows
# itself soon enough by the age of its oldest POST.
FIRST_GUESS = 0.05
WEIGHT = 0.2  # of the newest POST in the moving average of durations
FORGET_AFTER = 60.0  # seconds after its last re-look that an idle tenant's state is dropped


@dataclass
class _Tenant:
    duration: float = FIRST_GUESS  # moving average of its POSTs' seconds
    cursor: float = 0.0  # monotonic time of the last re-look handed out
    started: list[float] = field(default_factory=list)  # start times of its POSTs in flight


class Pacer:
    """Per tenant: its POSTs in flight on this replica, and the re-looks of its waiting deliveries,
    handed out one after the other, `duration / slots` apart: the time one of the tenant's `slots` takes
    to free. The duration is the moving average of its POSTs, or the age of its oldest POST in flight
    when that is longer (a black hole is known before its first POST times out)."""

    def __init__(self, slots: int, longest: float = 3600.0) -> None:
        self._slots = max(slots, 1)
        self._longest = longest
        self._tenants: dict[UUID, _Tenant] = {}

    def in_flight(self, tenant: UUID) -> int:
        """The tenant's POSTs in flight on this replica: what its cap is checked against."""
        state = self._tenants.get(tenant)
        return len(state.started) if state is not None else 0

    def began(self, tenant: UUID, now: float) -> None:
        self._tenants.setdefault(tenant, _Tenant()).started.append(now)

    def finished(self, tenant: UUID, started: float, now: float) -> None:
        state = self._tenants.get(tenant)
        if state is None:
            return
        if started in state.started:
            state.started.remove(started)
        state.duration += WEIGHT * ((now - started) - state.duration)
        if not state.started and state.cursor < now - FORGET_AFTER:
            del self._tenants[tenant]

    def wait(self, tenant: UUID, now: float) -> float:
        """Seconds until this delivery should be looked at again; each call takes the next turn."""
        state = self._tenants.setdefault(tenant, _Tenant())
        duration = max(state.duration, now - min(state.started)) if state.started else state.duration
        state.cursor = max(state.cursor, now) + duration / self._slots
        # A little spread: replicas hand out turns of their own, and equal delays arrive together.
        return min(state.cursor - now, self._longest) * random.uniform(1.0, 1.1)

    def tracked(self) -> int:
        """Tenants with state held (bounded: idle ones are forgotten)."""
        return len(self._tenants)
