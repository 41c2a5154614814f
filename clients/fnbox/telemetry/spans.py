"""Small span helpers shared by the services."""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["record_fault"]


def record_fault(span: Span, error: BaseException) -> None:
    """Mark ``span`` ERROR for a platform fault (never for a user's outcome, which is data)."""
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
