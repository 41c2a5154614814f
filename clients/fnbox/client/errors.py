"""The client's exception hierarchy and its one translation point from gRPC statuses.

Every failed RPC surfaces as a subclass of :class:`RPCError` (itself a :class:`FnboxError`),
chosen by status code, carrying the ``google.rpc.ErrorInfo`` the server attached. A user's
JavaScript exception is never an exception here: it is an ``InvocationResult`` with an outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "FnboxError",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RPCError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "error_from_status",
    "map_rpc_errors",
]


class FnboxError(Exception):
    """Root of every exception raised by the fnbox client."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field of a request (from ``google.rpc.BadRequest`` or ErrorInfo metadata)."""

    field: str
    description: str


class RPCError(FnboxError):
    """A call failed with a gRPC status.

    Attributes:
        code: the gRPC status code.
        message: the status message.
        reason: ``ErrorInfo.reason`` (UPPER_SNAKE), empty when the server sent none.
        domain: ``ErrorInfo.domain`` (``"fnbox.dev"`` for fnbox's own errors).
        metadata: ``ErrorInfo.metadata``, e.g. ``{"line": "3", "column": "7"}``.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        if self.metadata.get("retryable") == "false":
            self.retryable = False  # the server knows better (e.g. a crash loop)
        self.field_violations = field_violations

    def __str__(self) -> str:
        return self.message or self.code.name.lower()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code.name}, "
            f"reason={self.reason!r}, metadata={self.metadata!r})"
        )


class InvalidArgument(RPCError):
    """The request was malformed: bad field, invalid settings, or code that does not compile.

    For a syntax error, :attr:`line` and :attr:`column` locate it in the code.
    """

    @property
    def line(self) -> int | None:
        """1-based line of a syntax error, when the server reported one."""
        return _int_or_none(self.metadata.get("line"))

    @property
    def column(self) -> int | None:
        """1-based column of a syntax error, when the server reported one."""
        return _int_or_none(self.metadata.get("column"))


class NotFound(RPCError):
    """The named function, version, instance, workspace or token does not exist."""


class AlreadyExists(RPCError):
    """A resource with that name or id already exists."""


class Unauthenticated(RPCError):
    """The token is missing, malformed or unknown."""


class PermissionDenied(RPCError):
    """The token's role does not allow the call."""


class FailedPrecondition(RPCError):
    """The system is not in a state that allows the call (e.g. nothing deployed yet)."""


class Unavailable(RPCError):
    """The server cannot be reached or a worker died mid-call; safe to retry."""

    retryable = True


class ResourceExhausted(RPCError):
    """The server is overloaded or a quota is exceeded; retry after a backoff."""

    retryable = True


class DeadlineExceeded(RPCError):
    """The call's deadline passed before the server answered."""


class Cancelled(RPCError):
    """The call was cancelled."""


class Internal(RPCError):
    """A fault inside the server; details are in the server's logs, not here."""


_BY_CODE: dict[grpc.StatusCode, type[RPCError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNKNOWN: Internal,
    grpc.StatusCode.DATA_LOSS: Internal,
}
_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


@contextmanager
def map_rpc_errors() -> Iterator[None]:
    """Translate a ``grpc.aio.AioRpcError`` raised inside the block into the public exception.

    This is the client's only translation point from gRPC statuses; it chains the original
    error (``raise ... from exc``).
    """
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise _from_rpc_error(exc) from exc


def error_from_status(status: status_pb2.Status) -> RPCError:
    """The public exception for a ``google.rpc.Status`` (as InvokeStream sends per request)."""
    code = _CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _build(code, status.message, status.details)


def _from_rpc_error(exc: grpc.aio.AioRpcError) -> RPCError:
    code = exc.code()
    message = exc.details() or ""
    try:
        # AioRpcError has the sync Call accessors from_call reads.
        rich = rpc_status.from_call(cast(grpc.Call, exc))
    except (ValueError, DecodeError):
        rich = None  # inconsistent or garbled details: keep the plain status
    return _build(code, message, rich.details if rich is not None else ())


def _build(code: grpc.StatusCode, message: str, details: Iterable[any_pb2.Any]) -> RPCError:
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for any_detail in details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        if any_detail.Is(info.DESCRIPTOR) and any_detail.Unpack(info):
            reason, domain = info.reason, info.domain
            metadata.update(info.metadata)
        elif any_detail.Is(bad_request.DESCRIPTOR) and any_detail.Unpack(bad_request):
            violations.extend(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
    if not violations and "field" in metadata:
        violations.append(FieldViolation(metadata["field"], message))
    cls = _BY_CODE.get(code, RPCError)
    return cls(
        message,
        code=code,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=tuple(violations),
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
