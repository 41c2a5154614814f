"""The client span of one invocation sent over a lane's InvokeStreamBatch.

Call metadata is per stream, so the span's context travels in the request itself
(``InvokeFunctionRequest.trace_context``); the control service parents its invocation span on
it. A platform fault (an RPC error) marks the span ERROR; a user's outcome is an attribute.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fnbox.client.errors import RPCError
from fnbox.functions.v1 import invocation_pb2
from fnbox.telemetry.carried import carried_headers
from fnbox.telemetry.propagation import inject, unsampled_parent
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["SPAN_NAME", "traced_invoke"]

SPAN_NAME = "fnbox.functions.v1.FunctionService/InvokeStreamBatch"

tracer = trace.get_tracer("fnbox.pipeline")

S = TypeVar("S")
Request = invocation_pb2.InvokeFunctionRequest
Result = invocation_pb2.InvocationResult


def outcome_label(outcome: int) -> str:
    """``OUTCOME_OK`` → ``OK``."""
    return invocation_pb2.Outcome.Name(outcome).removeprefix("OUTCOME_")


def traced_invoke(
    method: Callable[[S, Request], Awaitable[Result]],
) -> Callable[[S, Request], Awaitable[Result]]:
    """Decorate ``invoke(self, request)``: a CLIENT span around it, injected into the request
    (the current context as it is when the trace is not sampled)."""

    @functools.wraps(method)
    async def invoke(self: S, request: Request) -> Result:
        carried = carried_headers()
        if carried is not None:  # the context of the message being handled, as it came
            trace_context = request.trace_context
            for key, value in carried.items():  # a protobuf map's update() costs twice this
                trace_context[key] = value
            return await method(self, request)
        if unsampled_parent():  # no span (nobody records it); the trace id still flows on
            inject(request.trace_context)
            return await method(self, request)
        with tracer.start_as_current_span(
            SPAN_NAME,
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": "fnbox.functions.v1.FunctionService",
                "rpc.method": "InvokeStreamBatch",
                "fnbox.target": request.target,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            inject(request.trace_context)
            try:
                result = await method(self, request)
            except RPCError as error:
                span.set_attribute("rpc.grpc.status_code", error.code.value[0])
                span.set_status(Status(StatusCode.ERROR, f"{error.code.name}: {error.message}"))
                raise
            except Exception as error:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            span.set_attribute("fnbox.outcome", outcome_label(result.outcome))
            if result.version:
                span.set_attribute("fnbox.version", result.version)
            return result

    return invoke
