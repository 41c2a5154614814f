"""Typed async client of the fnbox control service.

``FnboxClient`` is the entry point; failures are the exceptions of :mod:`fnbox.client.errors`.
"""

from __future__ import annotations

from fnbox.client.client import DEFAULT_TIMEOUT, FnboxClient
from fnbox.client.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    FnboxError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RPCError,
    Unauthenticated,
    Unavailable,
    error_from_status,
    map_rpc_errors,
)
from fnbox.client.inputs import invoke_request, run_request, webhook_request
from fnbox.client.pipeline import InvokeOutcome
from fnbox.client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "FnboxClient",
    "FnboxError",
    "Internal",
    "InvalidArgument",
    "InvokeOutcome",
    "NotFound",
    "PermissionDenied",
    "RPCError",
    "ResourceExhausted",
    "RetryPolicy",
    "Unauthenticated",
    "Unavailable",
    "error_from_status",
    "invoke_request",
    "map_rpc_errors",
    "run_request",
    "webhook_request",
]
