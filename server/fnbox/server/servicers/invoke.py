"""The invocation RPCs of FunctionService: InvokeFunction, RunFunction, InvokeStream and
InvokeStreamBatch."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

import grpc
from fnbox.client.pipeline import size_bounded
from fnbox.executor.spans import recording
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.server.auth import Principal
from fnbox.server.dispatch import Dispatcher
from fnbox.server.errors import rpc_status_of
from fnbox.server.servicers.base import Deps, abort, authorize, rpc
from fnbox.server.store.base import Role
from fnbox.telemetry.propagation import context_of, unsampled_parent, within
from fnbox.telemetry.spans import record_fault
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("fnbox.server")

StreamContext = grpc.aio.ServicerContext[ipb.InvokeFunctionRequest, ipb.InvokeStreamResponse]
BatchContext = grpc.aio.ServicerContext[ipb.InvokeStreamBatchRequest, ipb.InvokeStreamBatchResponse]
# A batch of answers is split at about this size, so that it stays well under the message
# limit (a single larger answer still travels alone, as on InvokeStream).
_BATCH_BYTES = 1024 * 1024
# A valid traceparent of version 00 (ids not all zero).
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def _spans_record() -> bool:
    """Whether the servicer's tracer may record a span: as the global provider's (through
    the proxy ``get_tracer`` returned), else unless it is an SDK tracer that never samples."""
    if isinstance(tracer, trace.ProxyTracer):
        return recording()
    return getattr(tracer, "sampler", None) is not ALWAYS_OFF


def _passed_on(trace_context: Any) -> dict[str, str] | None:
    """The caller's trace headers for the worker, as they came, when they are a valid
    traceparent alone (the common form); None otherwise."""
    if len(trace_context) != 1:
        return None
    header = trace_context.get("traceparent")
    if header is None or _TRACEPARENT.fullmatch(header) is None:
        return None
    return {"traceparent": header}


class InvokeMixin:
    deps: Deps
    dispatcher: Dispatcher

    @rpc(Role.DEVELOPER)
    async def InvokeFunction(
        self, request: ipb.InvokeFunctionRequest, principal: Principal
    ) -> ipb.InvocationResult:
        return await self.dispatcher.invoke(principal, request)

    @rpc(Role.DEVELOPER)
    async def RunFunction(
        self, request: ipb.RunFunctionRequest, principal: Principal
    ) -> ipb.InvocationResult:
        return await self.dispatcher.run(principal, request)

    async def InvokeStream(
        self,
        request_iterator: AsyncIterable[ipb.InvokeFunctionRequest],
        context: StreamContext,
    ) -> AsyncIterator[ipb.InvokeStreamResponse]:
        """Invocations run concurrently (at most ``grpc.stream_concurrency`` in flight or
        waiting to be sent, so a slow reader holds back the stream) and are answered in
        completion order; a platform fault answers its one request with a status."""
        async for answers in self._invoke_concurrently(_one_each(request_iterator), context):
            for answer in answers:
                yield answer

    async def InvokeStreamBatch(
        self,
        request_iterator: AsyncIterable[ipb.InvokeStreamBatchRequest],
        context: BatchContext,
    ) -> AsyncIterator[ipb.InvokeStreamBatchResponse]:
        """InvokeStream with several requests per message; the answers that finished
        together share a message (up to a size, so it stays under the message limit)."""
        limit = min(_BATCH_BYTES, self.deps.settings.grpc.max_message_bytes // 2)
        async for answers in self._invoke_concurrently(_requests_of(request_iterator), context):
            for group in size_bounded(answers, limit):
                yield ipb.InvokeStreamBatchResponse(responses=group)

    async def _invoke_concurrently(
        self,
        requests: AsyncIterable[Sequence[ipb.InvokeFunctionRequest]],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[list[ipb.InvokeStreamResponse]]:
        """The core of both stream RPCs: the answers, in completion order, as lists of those
        finished by the time the caller asks for the next list (its slots are freed then)."""
        try:
            principal = await authorize(self.deps, context, Role.DEVELOPER)
        except Exception as exc:
            await abort(context, exc)
        slots = asyncio.Semaphore(self.deps.settings.grpc.stream_concurrency)
        done: asyncio.Queue[ipb.InvokeStreamResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def answer(
            request: ipb.InvokeFunctionRequest, trace: dict[str, str] | None = None
        ) -> tuple[ipb.InvokeStreamResponse, Exception | None]:
            """The answer to ``request``, and the platform fault it reports (if any)."""
            try:
                result = await self.dispatcher.invoke(principal, request, trace, streamed=True)
            except Exception as exc:
                status = rpc_status_of(exc)
                return ipb.InvokeStreamResponse(request_id=request.request_id, status=status), exc
            return ipb.InvokeStreamResponse(request_id=request.request_id, result=result), None

        async def traced_answer(request: ipb.InvokeFunctionRequest) -> ipb.InvokeStreamResponse:
            """``answer``, continuing the caller's trace in a span when it is sampled."""
            parent = context_of(request.trace_context)
            if parent is not None and unsampled_parent(parent):
                # A span under an unsampled parent is never recorded: keep the caller's
                # context (its trace id still reaches logs and the worker) and skip the span.
                with within(parent):
                    response, _ = await answer(request)
                return response
            with tracer.start_as_current_span(
                "fnbox.invoke",
                context=parent,
                kind=SpanKind.SERVER if parent is not None else SpanKind.INTERNAL,
                attributes={"fnbox.request_id": request.request_id},
            ) as span:
                response, fault = await answer(request)
                if fault is not None:
                    record_fault(span, fault)
            return response

        async def invoke_one(request: ipb.InvokeFunctionRequest) -> None:
            # Each request continues its caller's trace (metadata is per stream, not request).
            try:
                if _spans_record():
                    response = await traced_answer(request)
                else:
                    # No span would be recorded under any parent: the caller's traceparent goes
                    # to the worker as it came (no parse, context, attach or re-format per
                    # request), as a unary call's does; anything else gets a new one there.
                    response, _ = await answer(request, _passed_on(request.trace_context))
                done.put_nowait(response)
            finally:
                # Here rather than a done callback (a loop callback per request); its answer
                # is queued already.
                running.discard(asyncio.current_task())

        async def read_requests() -> None:
            try:
                async for group in requests:
                    for request in group:
                        await slots.acquire()
                        running.add(asyncio.create_task(invoke_one(request)))
                while running:
                    await asyncio.wait(set(running))
            finally:
                done.put_nowait(None)

        reader = asyncio.create_task(read_requests())
        try:
            while True:
                # Whatever finished while the last answers were sent (or in the loop turn that
                # woke us) goes along: under load answers coalesce, with no timer.
                answers: list[ipb.InvokeStreamResponse] = []
                response = await done.get()
                while response is not None:
                    answers.append(response)
                    if done.empty():
                        break
                    response = done.get_nowait()
                if answers:
                    yield answers
                    for _ in answers:
                        slots.release()
                if response is None:
                    break
            await reader
        finally:
            for task in (reader, *running):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(reader, *running, return_exceptions=True)


async def _one_each(
    requests: AsyncIterable[ipb.InvokeFunctionRequest],
) -> AsyncIterator[tuple[ipb.InvokeFunctionRequest]]:
    async for request in requests:
        yield (request,)


async def _requests_of(
    batches: AsyncIterable[ipb.InvokeStreamBatchRequest],
) -> AsyncIterator[Sequence[ipb.InvokeFunctionRequest]]:
    """Each batch's requests (one step of this generator per message, not per request)."""
    async for batch in batches:
        yield batch.requests
