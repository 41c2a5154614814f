"""The pipeline's view of the control service: lookups, invocations and dead letters.

Everything goes over gRPC through the client library (one channel): invocations are
multiplexed over one long-lived InvokeStream, so thousands can be in flight at little cost.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence

import grpc
from fnbox.client.dead_letters import DeadLettersAPI
from fnbox.client.errors import RPCError, Unavailable
from fnbox.client.pipeline import invoke_many
from fnbox.client.retry import RetryPolicy
from fnbox.client.transport import Transport
from fnbox.delivery.tasks import cancel_and_wait
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2, resources_pb2, service_pb2
from fnbox.telemetry.invoke import traced_invoke

__all__ = ["ControlPlane"]

log = logging.getLogger(__name__)

InvokeRequest = invocation_pb2.InvokeFunctionRequest


class ControlPlane:
    """gRPC access to the control service with a service (platform-admin) token.

    ``invoke`` raises :class:`~fnbox.client.errors.RPCError` for platform faults (the stream
    broke, not found, ...); a user's exception is a result with an outcome.
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float = 30.0,
        invoke_timeout: float = 120.0,
        stream_concurrency: int = 512,
    ) -> None:
        self.target = target
        self._transport = Transport(
            target, token, timeout=timeout, retry=RetryPolicy(max_attempts=3)
        )
        self.dead_letters = DeadLettersAPI(self._transport)
        self._invoke_timeout = invoke_timeout
        self._stream = _StreamInvoker(self._transport, stream_concurrency)

    async def close(self) -> None:
        """Stop the invocation stream and close the channel."""
        await self._stream.close()
        await self._transport.close()

    async def get_instance(
        self, name: str, *, reveal_webhook_secret: bool = False
    ) -> resources_pb2.Instance:
        """The instance ``name`` (resource name, any workspace with a platform-admin token)."""
        request = service_pb2.GetInstanceRequest(
            name=name, reveal_webhook_secret=reveal_webhook_secret
        )
        return await self._transport.unary(
            "InstanceService", "GetInstance", request, resources_pb2.Instance, idempotent=True
        )

    async def get_function(self, name: str) -> resources_pb2.Function:
        """The function ``name`` (for its batch options and code)."""
        request = service_pb2.GetFunctionRequest(name=name)
        return await self._transport.unary(
            "FunctionService", "GetFunction", request, resources_pb2.Function, idempotent=True
        )

    async def get_workspace(self, name: str) -> resources_pb2.Workspace:
        """The workspace ``name`` (``workspaces/w``; for its display name)."""
        request = service_pb2.GetWorkspaceRequest(name=name)
        return await self._transport.unary(
            "WorkspaceService", "GetWorkspace", request, resources_pb2.Workspace, idempotent=True
        )

    async def list_instances(self, parent: str) -> list[resources_pb2.Instance]:
        """Every instance of workspace ``parent``."""
        instances: list[resources_pb2.Instance] = []
        token = ""
        while True:
            request = service_pb2.ListInstancesRequest(
                parent=parent, page_size=1000, page_token=token
            )
            page = await self._transport.unary(
                "InstanceService",
                "ListInstances",
                request,
                service_pb2.ListInstancesResponse,
                idempotent=True,
            )
            instances.extend(page.instances)
            token = page.next_page_token
            if not token:
                return instances

    @traced_invoke
    async def invoke(self, request: InvokeRequest) -> invocation_pb2.InvocationResult:
        """Run one invocation over the shared stream (a fresh request_id suffix is added)."""
        request.request_id = f"{request.request_id or 'pipeline'}:{uuid.uuid4().hex[:12]}"
        try:
            return await asyncio.wait_for(self._stream.submit(request), self._invoke_timeout)
        except TimeoutError:
            self._stream.forget(request.request_id)
            raise Unavailable(
                "no answer from the control service in time", code=grpc.StatusCode.UNAVAILABLE
            ) from None

    async def record_dead_letters(
        self, dead_letters: Sequence[dead_letters_pb2.DeadLetter]
    ) -> None:
        """Store final failures (idempotent by id)."""
        if dead_letters:
            await self.dead_letters.record(dead_letters)


class _StreamInvoker:
    """Futures on top of ``invoke_many``: submit a request, await its result.

    One stream is kept open and reopened after a failure; requests in flight on a broken
    stream fail with the stream's error (callers retry them through the bus).
    """

    def __init__(self, transport: Transport, concurrency: int) -> None:
        self._transport = transport
        self._concurrency = concurrency
        self._queue: asyncio.Queue[InvokeRequest] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[invocation_pb2.InvocationResult]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, request: InvokeRequest) -> invocation_pb2.InvocationResult:
        if self._closed:
            raise Unavailable("the invoker is closed", code=grpc.StatusCode.UNAVAILABLE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="invoke-stream")
        future: asyncio.Future[invocation_pb2.InvocationResult] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting[request.request_id] = future
        self._queue.put_nowait(request)
        try:
            return await future
        finally:
            self._waiting.pop(request.request_id, None)

    def forget(self, request_id: str) -> None:
        self._waiting.pop(request_id, None)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            await cancel_and_wait([self._task])
        self._fail_all(Unavailable("the invoker is closed", code=grpc.StatusCode.UNAVAILABLE))

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                async for outcome in invoke_many(
                    self._transport, self._requests(), concurrency=self._concurrency
                ):
                    delay = 0.05
                    future = self._waiting.get(outcome.request.request_id)
                    if future is None or future.done():
                        continue
                    if outcome.error is not None:
                        future.set_exception(outcome.error)
                    elif outcome.result is not None:
                        future.set_result(outcome.result)
            except RPCError as error:
                log.warning("invoke stream broke: %s", error)
                self._fail_all(error)
            except Exception as error:  # a bug must not leave callers waiting forever
                log.exception("invoke stream failed")
                self._fail_all(Unavailable(str(error), code=grpc.StatusCode.UNAVAILABLE))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _requests(self) -> AsyncIterator[InvokeRequest]:
        while True:
            request = await self._queue.get()
            if request.request_id in self._waiting:
                yield request

    def _fail_all(self, error: RPCError) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        # Requests still queued belong to the failed callers too: they will resubmit.
        while not self._queue.empty():
            self._queue.get_nowait()
