"""Many invocations pipelined over one stream (InvokeStreamBatch, or InvokeStream), with
bounded concurrency and retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from fnbox.client.errors import Internal, RPCError, error_from_status, map_rpc_errors
from fnbox.client.transport import Transport
from fnbox.functions.v1 import invocation_pb2
from google.protobuf.message import Message

__all__ = ["InvokeOutcome", "invoke_many", "invoke_stream", "size_bounded"]

InvokeRequest = invocation_pb2.InvokeFunctionRequest
M = TypeVar("M", bound=Message)
InvokeResponse = invocation_pb2.InvokeStreamResponse
# A batch message is cut at about this size, well under the control service's message limit
# (16 MiB by default); a single larger request still travels alone, as on InvokeStream.
_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class InvokeOutcome:
    """The answer to one request of :func:`invoke_many`: a result, or the platform error.

    A user's exception is a ``result`` with an outcome; ``error`` is only for platform faults
    (not found, unavailable after the retries, ...).
    """

    request: InvokeRequest
    result: invocation_pb2.InvocationResult | None = None
    error: RPCError | None = None


async def invoke_stream(
    transport: Transport, requests: AsyncIterable[InvokeRequest]
) -> AsyncIterator[invocation_pb2.InvokeStreamResponse]:
    """Raw InvokeStream: send ``requests``, yield responses as they come (out of order)."""
    call = transport.stub("FunctionService").InvokeStream(requests, metadata=transport.metadata)
    try:
        with map_rpc_errors():
            async for response in call:
                yield response
    finally:
        call.cancel()


async def invoke_many(
    transport: Transport,
    requests: Iterable[InvokeRequest] | AsyncIterable[InvokeRequest],
    *,
    concurrency: int,
    batched: bool = True,
) -> AsyncIterator[InvokeOutcome]:
    """Pipeline ``requests`` over one stream with at most ``concurrency`` unanswered.

    Yields one :class:`InvokeOutcome` per request, in completion order. Requests without a
    ``request_id`` get one (set on the message). Retryable per-request statuses are resent
    with the same request id following the transport's retry policy.

    The stream is an InvokeStreamBatch, whose messages carry the requests (and answers) that
    are ready together; ``batched=False`` uses InvokeStream, one request per message (for a
    control service older than InvokeStreamBatch).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    pipeline = _Pipeline(transport, requests, concurrency, batched=batched)
    async for outcome in pipeline.run():
        yield outcome


class _Pipeline:
    def __init__(
        self,
        transport: Transport,
        requests: Iterable[InvokeRequest] | AsyncIterable[InvokeRequest],
        concurrency: int,
        *,
        batched: bool,
    ) -> None:
        self._transport = transport
        self._batched = batched
        self._requests = requests
        self._slots = asyncio.Semaphore(concurrency)
        self._pending: dict[str, tuple[InvokeRequest, int]] = {}
        self._outbox: asyncio.Queue[InvokeRequest | None] = asyncio.Queue()
        self._input_done = False
        self._input_error: BaseException | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    async def run(self) -> AsyncIterator[InvokeOutcome]:
        service = self._transport.stub("FunctionService")
        method = service.InvokeStreamBatch if self._batched else service.InvokeStream
        call: Any = method(metadata=self._transport.metadata)
        feeder = asyncio.create_task(self._feed(call))
        writer = asyncio.create_task(
            self._write_batches(call) if self._batched else self._write(call)
        )
        try:
            with map_rpc_errors():
                try:
                    async for message in call:
                        for response in message.responses if self._batched else (message,):
                            outcome = self._answer(response)
                            if outcome is not None:
                                yield outcome
                except asyncio.CancelledError:
                    # _feed cancels the call when the caller's iterator fails: report that.
                    if self._input_error is not None:
                        raise self._input_error from None
                    raise
            if self._input_error is not None:
                raise self._input_error
            if self._pending:
                raise Internal(
                    f"the server closed the stream with {len(self._pending)} requests unanswered",
                    code=grpc.StatusCode.INTERNAL,
                )
        finally:
            for timer in self._timers:
                timer.cancel()
            feeder.cancel()
            writer.cancel()
            call.cancel()
            # Collect the helpers' own failures: the read above already reported the stream's.
            await asyncio.gather(feeder, writer, return_exceptions=True)

    async def _feed(self, call: Any) -> None:
        try:
            async for request in _aiter(self._requests):
                if not request.request_id:
                    request.request_id = str(uuid.uuid4())
                if request.request_id in self._pending:
                    raise ValueError(f"duplicate request_id {request.request_id!r}")
                await self._slots.acquire()
                self._pending[request.request_id] = (request, 1)
                self._outbox.put_nowait(request)
        except Exception as exc:
            self._input_error = exc
            call.cancel()
            return
        self._input_done = True
        self._finish_if_done()

    async def _write(self, call: Any) -> None:
        while (request := await self._outbox.get()) is not None:
            await call.write(request)
        await call.done_writing()

    async def _write_batches(self, call: Any) -> None:
        """The requests that are ready together go in one message: those taken (or answered
        and resent) while the last message was being written."""
        while True:
            ready = [await self._outbox.get()]
            while not self._outbox.empty():
                ready.append(self._outbox.get_nowait())
            # The end marker comes last: nothing is pending once it is queued.
            ending = ready[-1] is None
            requests = [request for request in ready if request is not None]
            for group in size_bounded(requests, _BATCH_BYTES):
                await call.write(invocation_pb2.InvokeStreamBatchRequest(requests=group))
            if ending:
                break
        await call.done_writing()

    def _answer(self, response: InvokeResponse) -> InvokeOutcome | None:
        entry = self._pending.get(response.request_id)
        if entry is None:
            return None  # an answer to a request already answered (a duplicate); ignore it
        request, attempt = entry
        if response.WhichOneof("response") == "result":
            outcome = InvokeOutcome(request, result=response.result)
        else:
            error = error_from_status(response.status)
            policy = self._transport.retry
            if policy.should_retry(error, attempt):
                self._pending[response.request_id] = (request, attempt + 1)
                self._resend_later(request, policy.backoff(attempt))
                return None
            outcome = InvokeOutcome(request, error=error)
        del self._pending[response.request_id]
        self._slots.release()
        self._finish_if_done()
        return outcome

    def _resend_later(self, request: InvokeRequest, delay: float) -> None:
        def resend() -> None:
            self._timers.discard(timer)
            self._outbox.put_nowait(request)

        timer = asyncio.get_running_loop().call_later(delay, resend)
        self._timers.add(timer)

    def _finish_if_done(self) -> None:
        if self._input_done and not self._pending:
            self._outbox.put_nowait(None)


def size_bounded(messages: Iterable[M], limit: int) -> Iterator[list[M]]:
    """``messages`` in consecutive groups of at most about ``limit`` serialized bytes (one
    larger than ``limit`` goes alone): the requests or answers that share a stream message
    (InvokeStreamBatch, both sides), so that it stays under the message size limit."""
    group: list[M] = []
    size = 0
    for message in messages:
        message_size = message.ByteSize()
        if size + message_size > limit and group:
            yield group
            group, size = [], 0
        group.append(message)
        size += message_size
    if group:
        yield group


async def _aiter(
    requests: Iterable[InvokeRequest] | AsyncIterable[InvokeRequest],
) -> AsyncIterator[InvokeRequest]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request
