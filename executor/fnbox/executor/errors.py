"""The executor's one exception hierarchy.

A user's JavaScript exception is never one of these: it is an ``InvocationResult`` with an
outcome. These are platform faults. Each carries an UPPER_SNAKE ``reason`` (for
``google.rpc.ErrorInfo``), whether the caller may retry the same request, and the name of the
gRPC status code it maps to (as a string, so that nothing here imports grpc).
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Root of every platform fault raised by the executor."""

    reason: str = "EXECUTOR_ERROR"
    retryable: bool = False
    status: str = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class WorkerCrashed(ExecutorError):
    """The worker running the call died, garbled its stream or was killed under it."""

    reason = "WORKER_CRASHED"
    retryable = True
    status = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        cause: str = "",
        reason: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retryable=retryable)
        # Why the worker died: on its own, "heap_limit", "memory_limit", "signal" or "exit"
        # (see process.describe_death); stopped by the service, the reason it was killed
        # ("timeout" when another call on it timed out, "protocol", ...); else empty.
        self.cause = cause


class WorkerStartFailed(WorkerCrashed):
    """A worker could not be started or did not complete its handshake."""

    reason = "WORKER_START_FAILED"


class PoolOverloaded(ExecutorError):
    """No worker slot became free in time: back off and retry."""

    reason = "POOL_OVERLOADED"
    retryable = True
    status = "RESOURCE_EXHAUSTED"


class CrashLoop(ExecutorError):
    """The function's workers keep dying; it is refused until ``retry_after_s`` has passed."""

    reason = "CRASH_LOOP"
    retryable = False
    status = "UNAVAILABLE"

    def __init__(self, message: str, *, key: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.key = key
        self.retry_after_s = retry_after_s


class ExecutorClosed(ExecutorError):
    """The pool is shutting down or closed; another replica may serve the call."""

    reason = "EXECUTOR_CLOSED"
    retryable = True
    status = "UNAVAILABLE"


class PayloadTooLarge(ExecutorError):
    """The request would exceed the frame size cap."""

    reason = "PAYLOAD_TOO_LARGE"
    retryable = False
    status = "INVALID_ARGUMENT"


class ProtocolError(ExecutorError):
    """The byte stream does not follow PROTOCOL.md (bad length, bad header, oversize frame).

    Raised by the codec; the process layer turns it into a kill of the worker and
    ``WorkerCrashed`` for its calls.
    """

    reason = "PROTOCOL_ERROR"
    status = "INTERNAL"


class FrameTooLarge(ProtocolError):
    """A frame announced a length above the cap."""

    reason = "FRAME_TOO_LARGE"
