"""Retry policy: how long to wait before the next attempt and when to give up (no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter.

    The first delay is drawn in ``[first_min, first_max]``; each later one is ``multiplier``
    times the previous upper bound, jittered down to half of it, and never above ``max_delay``.
    Retries stop after ``max_attempts`` attempts (0: no count limit) or once ``max_age``
    seconds have passed since the first attempt (0: no age limit).
    """

    first_min: float
    first_max: float
    multiplier: float
    max_delay: float
    max_attempts: int = 0
    max_age: float = 0.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt <= 1:
            return min(self.max_delay, random.uniform(self.first_min, self.first_max))
        ceiling = min(self.max_delay, self.first_max * self.multiplier ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def exhausted(self, attempt: int, age: float) -> bool:
        """True when attempt number ``attempt``, ``age`` seconds after the first, was the last."""
        if self.max_attempts and attempt >= self.max_attempts:
            return True
        return bool(self.max_age) and age >= self.max_age
