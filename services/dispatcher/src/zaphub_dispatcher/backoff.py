"""Backoff delays for transient send failures.

Retries happen through JetStream redelivery (a NAK with a delay), not a call loop, so only the delay
formula is needed here: exponential with full jitter, capped.
"""

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`, for `attempt` ≥ 1 failed attempts so far."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    # Full jitter spreads retries of many messages that failed together; never below a tenth of base.
    return max(base / 10, (rng or random).uniform(0, ceiling))
