"""The control service's exceptions and the one place that turns any exception into a gRPC status.

Servicer methods raise :class:`FnboxError` subclasses (or let executor errors through); the
:func:`rpc_status_of` translation builds a ``google.rpc.Status`` carrying ``google.rpc.ErrorInfo``
(domain ``fnbox.dev``, reason UPPER_SNAKE, string metadata). Unknown exceptions become INTERNAL
with a generic message: their text may hold internals, so it only goes to the service log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc
from fnbox.executor import errors as executor_errors
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "fnbox.dev"

logger = logging.getLogger(__name__)


class FnboxError(Exception):
    """A platform fault the caller should see as a gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(FnboxError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(FnboxError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"

    def __init__(self, resource: str, *, kind: str = "resource") -> None:
        super().__init__(
            f"{kind} {resource!r} not found",
            reason=f"{kind.upper()}_NOT_FOUND",
            metadata={"resource": resource},
        )


class FailedPrecondition(FnboxError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Unauthenticated(FnboxError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(FnboxError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(FnboxError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(FnboxError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class SyntaxErrorInCode(InvalidArgument):
    """The function's code does not compile."""

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(
            f"syntax error at line {line}, column {column}: {message}",
            reason="SYNTAX_ERROR",
            metadata={"line": str(line), "column": str(column)},
        )
        self.line = line
        self.column = column


def rpc_status_of(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status (with ErrorInfo) that tells a caller about ``exc``."""
    if isinstance(exc, FnboxError):
        return _status(exc.code, exc.message, exc.reason, exc.metadata)
    if isinstance(exc, executor_errors.ExecutorError):
        # The executor names the status of each of its errors (it does not import grpc):
        # WorkerCrashed/CrashLoop/ExecutorClosed → UNAVAILABLE, PoolOverloaded →
        # RESOURCE_EXHAUSTED, PayloadTooLarge → INVALID_ARGUMENT.
        code = getattr(grpc.StatusCode, exc.status, grpc.StatusCode.INTERNAL)
        metadata = {"retryable": str(exc.retryable).lower()}
        if isinstance(exc, executor_errors.CrashLoop):
            metadata["retry_after_s"] = f"{exc.retry_after_s:.1f}"
        if isinstance(exc, executor_errors.WorkerCrashed) and exc.cause:
            metadata["cause"] = exc.cause
        if code is grpc.StatusCode.INTERNAL:
            logger.error("executor fault: %r", exc)
            return _status(code, "internal error", exc.reason, metadata)
        return _status(code, exc.message or exc.reason, exc.reason, metadata)
    logger.error("unhandled exception in RPC", exc_info=exc)
    return _status(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL", {})


def _status(
    code: grpc.StatusCode, message: str, reason: str, metadata: Mapping[str, str]
) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata))
    detail = any_pb2.Any()
    detail.Pack(info)
    rpc_code: int = code.value[0]
    assert rpc_code != code_pb2.OK
    return status_pb2.Status(code=rpc_code, message=message, details=[detail])
