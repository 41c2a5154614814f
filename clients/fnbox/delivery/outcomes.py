"""How the pipeline classifies results: delivered, retry later, or final failure."""

from __future__ import annotations

from enum import Enum

from fnbox.client.errors import (
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    RPCError,
    Unavailable,
)
from fnbox.functions.v1 import invocation_pb2

__all__ = ["Verdict", "for_error", "for_event_result", "for_outcome"]

pb = invocation_pb2


class Verdict(Enum):
    OK = "ok"
    RETRY = "retry"
    FAIL = "fail"


_RETRYABLE_OUTCOMES = {pb.OUTCOME_RETRY, pb.OUTCOME_TIMEOUT}


def for_outcome(outcome: invocation_pb2.Outcome) -> Verdict:
    """RETRY and TIMEOUT are retried; OK (and DROP) are done; anything else is final."""
    if outcome in (pb.OUTCOME_OK, pb.OUTCOME_DROP):
        return Verdict.OK
    if outcome in _RETRYABLE_OUTCOMES:
        return Verdict.RETRY
    return Verdict.FAIL


def for_event_result(result: invocation_pb2.EventResult) -> Verdict:
    """One entry of onBatch's statuses: 5xx and 429 are retried, other 4xx are final."""
    verdict = for_outcome(result.outcome)
    if verdict is not Verdict.OK:
        return verdict
    if result.status >= 500 or result.status == 429:
        return Verdict.RETRY
    if result.status >= 400:
        return Verdict.FAIL
    return Verdict.OK


def for_error(error: RPCError) -> Verdict:
    """Platform faults: unavailable, overloaded, timed out or internal are retried."""
    if isinstance(error, Unavailable | ResourceExhausted | DeadlineExceeded | Internal):
        return Verdict.RETRY
    return Verdict.FAIL
