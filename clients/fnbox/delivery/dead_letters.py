"""Building dead-letter records for final failures (stored through the control service)."""

from __future__ import annotations

import hashlib

from fnbox.client.errors import RPCError
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["dead_letter", "dead_letter_id", "error_class"]

Stage = dead_letters_pb2.DeadLetterStage

FINAL_OUTCOME = "FINAL_OUTCOME"
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
INSERT_FAILED = "INSERT_FAILED"

# The error class behind an event's outcome in a batch (a batch entry carries its outcome and
# message, not the error's name). RETRY and ERROR also come from onBatch's returned statuses,
# where nothing was thrown: those stay "Error".
_ERROR_CLASSES = {
    invocation_pb2.OUTCOME_EVENT_NOT_SUPPORTED: "EventNotSupported",
    invocation_pb2.OUTCOME_VALIDATION_ERROR: "ValidationError",
    invocation_pb2.OUTCOME_INVALID_EVENT_PAYLOAD: "InvalidEventPayload",
    invocation_pb2.OUTCOME_TIMEOUT: "TimeoutError",
}


def error_class(outcome: invocation_pb2.Outcome) -> str:
    """The name of the error a batch entry with ``outcome`` stands for (default "Error")."""
    return _ERROR_CLASSES.get(outcome, "Error")


def dead_letter_id(instance: str, message_id: str) -> str:
    """Deterministic, so recording the same failure twice keeps one entry."""
    return "dl_" + hashlib.sha256(f"{instance}|{message_id}".encode()).hexdigest()[:24]


def dead_letter(
    *,
    instance: str,
    stage: dead_letters_pb2.DeadLetterStage,
    message_id: str,
    reason: str,
    attempts: int,
    first_attempt: float,
    event: bytes = b"",
    request: invocation_pb2.WebhookRequest | None = None,
    result: invocation_pb2.InvocationResult | None = None,
    error: RPCError | None = None,
    outcome: invocation_pb2.Outcome = invocation_pb2.OUTCOME_UNSPECIFIED,
    error_message: str = "",
    error_name: str = "",
    replay_count: int = 0,
) -> dead_letters_pb2.DeadLetter:
    """A dead letter with the last result (user error and logs) or platform error."""
    record = dead_letters_pb2.DeadLetter(
        id=dead_letter_id(instance, message_id),
        instance=instance,
        stage=stage,
        message_id=message_id,
        reason=reason,
        attempts=attempts,
        event=event,
        outcome=outcome,
        replay_count=replay_count,
    )
    if request is not None:
        record.request.CopyFrom(request)
    if first_attempt:
        stamp = Timestamp()
        stamp.FromNanoseconds(int(first_attempt * 1e9))
        record.first_attempt_time.CopyFrom(stamp)
    if result is not None:
        # A batch entry's own outcome (``outcome``) beats the batch's.
        record.outcome = outcome or result.outcome
        record.error.CopyFrom(result.error)
        record.logs.extend(result.logs)
        record.version = result.version
    if error is not None:
        record.error.name = error.reason or error.code.name
        record.error.message = str(error)
    if error_message:
        record.error.message = error_message
        if not record.error.name:
            record.error.name = error_name or "Error"
    return record
