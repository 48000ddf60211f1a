"""Retries of sends, session commands and webhook deliveries: how many attempts, and the delay
before the next one.

Retries happen through JetStream redelivery (a NAK with a delay), not a call loop, so only the delay
formula is needed here: exponential with full jitter, capped.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float

    def delay(self, attempt: int) -> float:
        """Delay before attempt `attempt + 1`; see `backoff_delay`."""
        return backoff_delay(attempt, self.base_delay, self.max_delay)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`, for `attempt` ≥ 1 failed attempts so far."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    # Full jitter spreads retries of many messages that failed together; never below a tenth of base.
    return max(base / 10, (rng or random).uniform(0, ceiling))
