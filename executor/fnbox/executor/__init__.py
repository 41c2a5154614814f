"""fnbox executor: a supervised pool of sandboxed Node.js workers (no gRPC in here)."""

from __future__ import annotations

from fnbox.executor.errors import (
    CrashLoop,
    ExecutorClosed,
    ExecutorError,
    PayloadTooLarge,
    PoolOverloaded,
    WorkerCrashed,
    WorkerStartFailed,
)
from fnbox.executor.pool import WorkerPool
from fnbox.executor.settings import ExecutorSettings
from fnbox.executor.types import (
    EventResult,
    FunctionSpec,
    FunctionType,
    Invocation,
    InvocationResult,
    OutboundRequest,
    Outcome,
    PoolStats,
    SyntaxProblem,
    UserError,
    WebhookInput,
)

__all__ = [
    "CrashLoop",
    "EventResult",
    "ExecutorClosed",
    "ExecutorError",
    "ExecutorSettings",
    "FunctionSpec",
    "FunctionType",
    "Invocation",
    "InvocationResult",
    "OutboundRequest",
    "Outcome",
    "PayloadTooLarge",
    "PoolOverloaded",
    "PoolStats",
    "SyntaxProblem",
    "UserError",
    "WebhookInput",
    "WorkerCrashed",
    "WorkerPool",
    "WorkerStartFailed",
]
