"""The pipeline's view of the control service: lookups, invocations and dead letters.

Everything goes over gRPC through the client library (one channel): invocations are
multiplexed over InvokeStreams, one per lane (``lane(name)``: a destination or a source), so
thousands can be in flight at little cost and a lane whose calls hang holds back only itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from fnbox.client.dead_letters import DeadLettersAPI
from fnbox.client.retry import RetryPolicy
from fnbox.client.transport import Transport
from fnbox.delivery.lanes import InvokeLane
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2, resources_pb2, service_pb2

__all__ = ["ControlPlane"]

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
        stream_concurrency: int = 64,
        stream_idle_seconds: float = 30.0,
    ) -> None:
        self.target = target
        self._transport = Transport(
            target, token, timeout=timeout, retry=RetryPolicy(max_attempts=3)
        )
        self.dead_letters = DeadLettersAPI(self._transport)
        self._invoke_timeout = invoke_timeout
        self._stream_concurrency = stream_concurrency
        self._stream_idle_seconds = stream_idle_seconds
        self._lanes: dict[str, InvokeLane] = {}

    async def close(self) -> None:
        """Stop the invocation streams and close the channel."""
        for lane in list(self._lanes.values()):
            await lane.close()
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

    def lane(self, name: str) -> InvokeLane:
        """The invocation lane ``name`` (e.g. a destination's topic): its invocations travel
        on an InvokeStream of their own, so they never wait behind another lane's."""
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = InvokeLane(
                self._transport,
                name=name,
                concurrency=self._stream_concurrency,
                timeout=self._invoke_timeout,
                idle_seconds=self._stream_idle_seconds,
            )
        return lane

    async def invoke(self, request: InvokeRequest) -> invocation_pb2.InvocationResult:
        """Run one invocation on the default lane (a fresh request_id suffix is added)."""
        return await self.lane("").invoke(request)

    async def record_dead_letters(
        self, dead_letters: Sequence[dead_letters_pb2.DeadLetter]
    ) -> None:
        """Store final failures (idempotent by id)."""
        if dead_letters:
            await self.dead_letters.record(dead_letters)
