"""When and how long to wait before retrying a call (policy only; the client does the I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from fnbox.client.errors import RPCError

__all__ = ["NO_RETRY", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter for retryable statuses.

    Only idempotent calls are retried (reads, creates and invocations that carry a
    ``request_id``, deploys); the client decides which calls those are.

    Attributes:
        max_attempts: attempts in total, the first one included; 1 disables retries.
        initial_backoff: seconds before the first retry (upper bound of its jitter).
        max_backoff: cap on any single wait, in seconds.
        multiplier: growth of the backoff between attempts.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 3.0
    multiplier: float = 2.0

    def should_retry(self, error: RPCError, attempt: int) -> bool:
        """True when ``error``, raised by attempt number ``attempt`` (1-based), may be retried."""
        return error.retryable and attempt < self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(0.0, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)
