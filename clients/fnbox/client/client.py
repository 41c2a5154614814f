"""The fnbox client: one object per server, resources as attributes, invocations as methods."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Self

from fnbox.client.functions import FunctionsAPI
from fnbox.client.inputs import invoke_request, run_request
from fnbox.client.instances import InstancesAPI, SettingValues
from fnbox.client.pipeline import InvokeOutcome, invoke_many, invoke_stream
from fnbox.client.retry import RetryPolicy
from fnbox.client.transport import Transport
from fnbox.client.workspaces import WorkspacesAPI
from fnbox.functions.v1 import invocation_pb2, resources_pb2

__all__ = ["DEFAULT_TIMEOUT", "FnboxClient"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a unary call may take before ``DeadlineExceeded``."""


class FnboxClient:
    """Async client of an fnbox control service.

    Use it as an async context manager::

        async with FnboxClient("127.0.0.1:50051", token) as client:
            fn = await client.functions.create("hello", FUNCTION_TYPE_DESTINATION, code)
            await client.functions.deploy(fn.name)
            result = await client.invoke(fn.id, event=b'{"type":"track"}')

    Every call carries ``authorization: Bearer <token>``. Failed calls raise a subclass of
    :class:`~fnbox.client.errors.RPCError`; idempotent calls are first retried on
    ``UNAVAILABLE``/``RESOURCE_EXHAUSTED`` following ``retry``. A user's JavaScript exception is
    not an error: it is an ``InvocationResult`` with an outcome. Payloads (events, settings)
    are JSON bytes and are never decoded by the client.

    Attributes:
        functions: functions and versions (:class:`~fnbox.client.functions.FunctionsAPI`).
        instances: instances (:class:`~fnbox.client.instances.InstancesAPI`).
        workspaces: workspaces and tokens (:class:`~fnbox.client.workspaces.WorkspacesAPI`).
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        channel_options: list[tuple[str, Any]] | None = None,
    ) -> None:
        """
        Args:
            target: ``host:port`` of the control service.
            token: an API token (``fnbox serve`` writes the first one to ``DIR/admin.token``).
            timeout: default deadline of unary calls in seconds; ``None`` for none.
            retry: retry policy of idempotent calls; ``RetryPolicy(max_attempts=1)`` disables.
            channel_options: extra ``grpc.aio`` channel options.
        """
        self._transport = Transport(
            target,
            token,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            channel_options=channel_options,
        )
        self.functions = FunctionsAPI(self._transport)
        self.instances = InstancesAPI(self._transport)
        self.workspaces = WorkspacesAPI(self._transport)

    @property
    def transport(self) -> Transport:
        """The shared channel, metadata and retry policy, for APIs built on this client."""
        return self._transport

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._transport.target

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel. Calls still in flight are cancelled."""
        await self._transport.close()

    async def invoke(
        self,
        target: str,
        *,
        event: bytes | None = None,
        events: bytes | None = None,
        request: invocation_pb2.WebhookRequest | None = None,
        settings: SettingValues | None = None,
        request_id: str | None = None,
        version: int = 0,
        deadline: float | None = None,
    ) -> invocation_pb2.InvocationResult:
        """Run an instance, a function or a function version on one input.

        Give exactly one of ``event`` (JSON bytes), ``events`` (a JSON array, for ``onBatch``)
        or ``request`` (a webhook, see :func:`~fnbox.client.inputs.webhook_request`).
        ``settings`` apply to function targets; instances use their own, and ``version``
        picks another version of an instance's function than the deployed one. Retries reuse the
        ``request_id`` (generated when omitted), so they are safe. ``deadline`` (seconds)
        overrides the client's default timeout.
        """
        message = invoke_request(
            target,
            event=event,
            events=events,
            request=request,
            settings=settings,
            request_id=request_id,
            version=version,
        )
        return await self._transport.unary(
            "FunctionService",
            "InvokeFunction",
            message,
            invocation_pb2.InvocationResult,
            idempotent=True,
            deadline=deadline,
        )

    async def run(
        self,
        type: resources_pb2.FunctionType,
        code: str,
        *,
        event: bytes | None = None,
        events: bytes | None = None,
        request: invocation_pb2.WebhookRequest | None = None,
        settings: SettingValues | None = None,
        limits: resources_pb2.FunctionLimits | None = None,
        parent: str = "",
        deadline: float | None = None,
    ) -> invocation_pb2.InvocationResult:
        """Run unsaved ``code`` of function ``type`` on one input; nothing is stored.

        A syntax error raises ``InvalidArgument`` with ``line``/``column``.
        """
        message = run_request(
            type,
            code,
            event=event,
            events=events,
            request=request,
            settings=settings,
            limits=limits,
            parent=parent,
        )
        return await self._transport.unary(
            "FunctionService",
            "RunFunction",
            message,
            invocation_pb2.InvocationResult,
            idempotent=True,
            deadline=deadline,
        )

    def invoke_stream(
        self, requests: AsyncIterable[invocation_pb2.InvokeFunctionRequest]
    ) -> AsyncIterator[invocation_pb2.InvokeStreamResponse]:
        """Open an InvokeStream: send ``requests``, receive responses matched by request_id.

        Responses come out of order; each holds a ``result`` or a per-request ``status``
        (see :func:`~fnbox.client.errors.error_from_status`). Failure of the stream itself
        raises the mapped exception. No retries here: see :meth:`invoke_many`.
        """
        return invoke_stream(self._transport, requests)

    def invoke_many(
        self,
        requests: Iterable[invocation_pb2.InvokeFunctionRequest]
        | AsyncIterable[invocation_pb2.InvokeFunctionRequest],
        *,
        concurrency: int = 64,
        batched: bool = True,
    ) -> AsyncIterator[InvokeOutcome]:
        """Pipeline many invocations over one stream, at most ``concurrency`` in flight.

        Build requests with :func:`~fnbox.client.inputs.invoke_request`. Yields one
        :class:`~fnbox.client.pipeline.InvokeOutcome` per request as answers arrive;
        retryable per-request statuses are resent (same request_id) following the policy.
        ``batched=False`` sends one request per message (InvokeStream) instead of the ones
        ready together (InvokeStreamBatch), for a control service without InvokeStreamBatch.
        """
        return invoke_many(self._transport, requests, concurrency=concurrency, batched=batched)
