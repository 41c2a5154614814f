"""A per-destination circuit breaker (policy only: the worker asks it when to pause)."""

from __future__ import annotations

import time

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failed rounds; while open, :meth:`wait_time` is
    the time left before one probe round may run (half-open). A success closes it."""

    def __init__(self, threshold: int, open_seconds: float) -> None:
        self._threshold = max(threshold, 1)
        self._open_seconds = open_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def wait_time(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._open_seconds - time.monotonic())

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            if self._opened_at is None:
                self.trips += 1
            self._opened_at = time.monotonic()
