"""A small real grpc.aio FunctionService whose answers are scripted by the function name.

It exists to produce genuine ``AioRpcError``s with rich status details and stream behaviours
(out-of-order answers, per-request statuses) that the real control service only shows under
faults. End-to-end behaviour against the real service is tested in tests/cli.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import grpc
from fnbox.functions.v1 import (
    invocation_pb2,
    resources_pb2,
    service_pb2,
    service_pb2_grpc,
)
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

GOOD_TOKEN = "good-token"


def rich_status(
    code: int,
    message: str,
    *,
    reason: str,
    metadata: Mapping[str, str] | None = None,
    violations: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(reason=reason, domain="fnbox.dev", metadata=metadata or {})
    )
    details = [info]
    if violations:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in violations.items()
                ]
            )
        )
        details.append(bad)
    return status_pb2.Status(code=code, message=message, details=details)


async def _abort_with(
    context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status
) -> NoReturn:
    """``context.abort_with_status(to_status(status))``, spelled with the ``abort`` that
    grpc-stubs types: the details travel in the trailers."""
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)


class ScriptedFunctions(service_pb2_grpc.FunctionServiceServicer):
    """GetFunction/UpdateFunction/InvokeStream(Batch) answer according to the name they are given.

    ``missing`` → NOT_FOUND, ``bad-code`` → INVALID_ARGUMENT with line/column and a field
    violation, ``plain`` → INTERNAL without details, ``flaky-N`` → UNAVAILABLE for the first N
    calls then success, ``oom`` → UNAVAILABLE that the server says is not retryable,
    ``busy`` → RESOURCE_EXHAUSTED, ``hang`` never answers, anything else → a Function whose
    display_name echoes the caller's authorization metadata.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.hanging = asyncio.Event()  # set when a ``hang`` call arrives
        self.batch_sizes: list[int] = []  # requests per InvokeStreamBatch message

    async def GetFunction(
        self,
        request: service_pb2.GetFunctionRequest,
        context: grpc.aio.ServicerContext[service_pb2.GetFunctionRequest, resources_pb2.Function],
    ) -> resources_pb2.Function:
        return await self._answer(request.name, context)

    async def UpdateFunction(
        self,
        request: service_pb2.UpdateFunctionRequest,
        context: grpc.aio.ServicerContext[
            service_pb2.UpdateFunctionRequest, resources_pb2.Function
        ],
    ) -> resources_pb2.Function:
        return await self._answer(request.function.name, context)

    async def _answer(
        self, name: str, context: grpc.aio.ServicerContext[Any, resources_pb2.Function]
    ) -> resources_pb2.Function:
        self.calls[name] += 1
        auth = dict(context.invocation_metadata() or ()).get("authorization", "")
        if auth != f"Bearer {GOOD_TOKEN}":
            await _abort_with(
                context, rich_status(code_pb2.UNAUTHENTICATED, "bad token", reason="BAD_TOKEN")
            )
        if name == "hang":
            self.hanging.set()
            await asyncio.Event().wait()  # until the client goes away
        status = self._status_for(name, self.calls[name])
        if status is not None:
            await _abort_with(context, status)
        if name == "plain":
            await context.abort(grpc.StatusCode.INTERNAL, "plain failure")
        return resources_pb2.Function(name=name, display_name=auth)

    @staticmethod
    def _status_for(name: str, attempt: int) -> status_pb2.Status | None:
        if name == "missing":
            return rich_status(
                code_pb2.NOT_FOUND,
                "function 'missing' not found",
                reason="FUNCTION_NOT_FOUND",
                metadata={"resource": "missing"},
            )
        if name == "bad-code":
            return rich_status(
                code_pb2.INVALID_ARGUMENT,
                "syntax error at line 3, column 7: Unexpected token",
                reason="SYNTAX_ERROR",
                metadata={"line": "3", "column": "7"},
                violations={"function.code": "Unexpected token"},
            )
        if name == "busy":
            return rich_status(code_pb2.RESOURCE_EXHAUSTED, "pool overloaded", reason="OVERLOAD")
        if name == "oom":
            return rich_status(
                code_pb2.UNAVAILABLE,
                "the function ran out of memory: its worker's JavaScript heap reached the 64 MiB"
                " limit (executor heap_mib), and the worker was stopped (worker 7)",
                reason="WORKER_CRASHED",
                metadata={"retryable": "false", "cause": "heap_limit"},
            )
        if name.startswith("flaky-") and attempt <= int(name.split("-")[1]):
            return rich_status(code_pb2.UNAVAILABLE, "worker crashed", reason="WORKER_CRASHED")
        return None

    async def InvokeStream(
        self,
        requests: AsyncIterator[invocation_pb2.InvokeFunctionRequest],
        context: grpc.aio.ServicerContext[
            invocation_pb2.InvokeFunctionRequest, invocation_pb2.InvokeStreamResponse
        ],
    ) -> AsyncIterator[invocation_pb2.InvokeStreamResponse]:
        async for group in self._answer_groups(requests):
            for answer in group:
                yield answer

    async def InvokeStreamBatch(
        self,
        batches: AsyncIterator[invocation_pb2.InvokeStreamBatchRequest],
        context: grpc.aio.ServicerContext[
            invocation_pb2.InvokeStreamBatchRequest, invocation_pb2.InvokeStreamBatchResponse
        ],
    ) -> AsyncIterator[invocation_pb2.InvokeStreamBatchResponse]:
        """As InvokeStream, a group per message."""

        async def requests() -> AsyncIterator[invocation_pb2.InvokeFunctionRequest]:
            async for batch in batches:
                self.batch_sizes.append(len(batch.requests))
                for request in batch.requests:
                    yield request

        async for group in self._answer_groups(requests()):
            yield invocation_pb2.InvokeStreamBatchResponse(responses=group)

    async def _answer_groups(
        self, requests: AsyncIterator[invocation_pb2.InvokeFunctionRequest]
    ) -> AsyncIterator[list[invocation_pb2.InvokeStreamResponse]]:
        """Answers in groups of ``group`` (the number in a ``group-N`` target), last first.

        A group is answered as soon as it is full (or the input ends), so a client keeping at
        most N requests in flight makes progress.
        """
        held: list[invocation_pb2.InvokeFunctionRequest] = []
        async for request in requests:
            held.append(request)
            group = int(request.target.rsplit("-", 1)[1]) if "group-" in request.target else 1
            if len(held) >= group:
                yield [self._stream_answer(answer) for answer in reversed(held)]
                held.clear()
        if held:
            yield [self._stream_answer(answer) for answer in reversed(held)]

    def _stream_answer(
        self, request: invocation_pb2.InvokeFunctionRequest
    ) -> invocation_pb2.InvokeStreamResponse:
        key = f"{request.target}/{request.request_id}"
        self.calls[key] += 1
        status = self._status_for(request.target.split("/")[0], self.calls[key])
        if status is not None:
            return invocation_pb2.InvokeStreamResponse(request_id=request.request_id, status=status)
        result = invocation_pb2.InvocationResult(
            outcome=invocation_pb2.OUTCOME_OK, returned=request.event, duration_ms=1.0
        )
        return invocation_pb2.InvokeStreamResponse(request_id=request.request_id, result=result)
