"""The invocation RPCs of FunctionService: InvokeFunction, RunFunction, InvokeStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator

import grpc
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.server.auth import Principal
from fnbox.server.dispatch import Dispatcher
from fnbox.server.errors import rpc_status_of
from fnbox.server.servicers.base import Deps, abort, authorize, rpc
from fnbox.server.store.base import Role
from fnbox.telemetry.propagation import context_of
from fnbox.telemetry.spans import record_fault
from opentelemetry import trace
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("fnbox.server")

StreamContext = grpc.aio.ServicerContext[ipb.InvokeFunctionRequest, ipb.InvokeStreamResponse]


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
        try:
            principal = await authorize(self.deps, context, Role.DEVELOPER)
        except Exception as exc:
            await abort(context, exc)
        slots = asyncio.Semaphore(self.deps.settings.grpc.stream_concurrency)
        done: asyncio.Queue[ipb.InvokeStreamResponse | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def invoke_one(request: ipb.InvokeFunctionRequest) -> None:
            # Each request continues its caller's trace (metadata is per stream, not request).
            parent = context_of(request.trace_context)
            with tracer.start_as_current_span(
                "fnbox.invoke",
                context=parent,
                kind=SpanKind.SERVER if parent is not None else SpanKind.INTERNAL,
                attributes={"fnbox.request_id": request.request_id},
            ) as span:
                try:
                    result = await self.dispatcher.invoke(principal, request)
                    response = ipb.InvokeStreamResponse(
                        request_id=request.request_id, result=result
                    )
                except Exception as exc:
                    record_fault(span, exc)
                    response = ipb.InvokeStreamResponse(
                        request_id=request.request_id, status=rpc_status_of(exc)
                    )
            done.put_nowait(response)

        async def read_requests() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    task = asyncio.create_task(invoke_one(request))
                    running.add(task)
                    task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
            finally:
                done.put_nowait(None)

        reader = asyncio.create_task(read_requests())
        try:
            while (response := await done.get()) is not None:
                yield response
                slots.release()
            await reader
        finally:
            for task in (reader, *running):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(reader, *running, return_exceptions=True)
