"""The channel, credentials, deadlines and retries shared by every part of the client."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

import grpc
from fnbox.client.errors import RPCError, map_rpc_errors
from fnbox.client.retry import RetryPolicy
from fnbox.functions.v1 import dead_letters_pb2_grpc, observability_pb2_grpc, service_pb2_grpc
from google.protobuf.message import Message

__all__ = ["Transport"]

ResponseT = TypeVar("ResponseT", bound=Message)

# Where the generated stub of each service lives.
_STUB_MODULES: dict[str, Any] = {
    "FunctionService": service_pb2_grpc,
    "InstanceService": service_pb2_grpc,
    "WorkspaceService": service_pb2_grpc,
    "DeadLetterService": dead_letters_pb2_grpc,
    "ObservabilityService": observability_pb2_grpc,
}

# Invocation results can carry a batch's worth of events; the default 4 MiB is too tight.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Transport:
    """One ``grpc.aio`` channel with the token's metadata, a default deadline and retries.

    The channel is opened on first use, inside the running event loop.
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float | None,
        retry: RetryPolicy,
        channel_options: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.retry = retry
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),)
        self._options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            *(channel_options or []),
        ]
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel, opened on first access."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
        return self._channel

    def stub(self, service: str) -> Any:
        """The generated stub of ``service`` (``"FunctionService"``, ...) on this channel."""
        stub = self._stubs.get(service)
        if stub is None:
            stub = getattr(_STUB_MODULES[service], f"{service}Stub")(self.channel)
            self._stubs[service] = stub
        return stub

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            self._stubs.clear()
            await channel.close(grace=None)

    async def unary(
        self,
        service: str,
        method: str,
        request: Message,
        response_type: type[ResponseT],
        *,
        idempotent: bool,
        deadline: float | None = None,
    ) -> ResponseT:
        """Call one unary RPC, retrying retryable statuses when the call is idempotent.

        ``deadline`` (seconds) overrides the default timeout of this call. Raises the public
        exception for any failed status (see ``map_rpc_errors``).
        """
        rpc = getattr(self.stub(service), method)
        timeout = self.timeout if deadline is None else deadline
        attempt = 1
        while True:
            try:
                with map_rpc_errors():
                    response = await rpc(request, metadata=self.metadata, timeout=timeout)
                return cast(ResponseT, response)
            except RPCError as error:
                if not (idempotent and self.retry.should_retry(error, attempt)):
                    raise
            await asyncio.sleep(self.retry.backoff(attempt))
            attempt += 1
