"""Invocation lanes: each lane multiplexes its invocations over an InvokeStream of its own.

The control service runs at most ``grpc.stream_concurrency`` invocations of one stream at a
time and reads no further requests of that stream until one finishes. With one stream per
process, a few destinations whose calls hang (until their timeout) would fill those slots and
every other destination's invocations would wait behind them. So each destination (and each
source) gets its own lane: what hangs in one lane holds back only that lane. A lane's stream
is opened on its first invocation and closed once it has been idle for a while, so a process
serving thousands of rarely active destinations keeps only the busy ones' streams open.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
from collections.abc import AsyncIterator

import grpc
from fnbox.client.errors import RPCError, Unavailable
from fnbox.client.pipeline import invoke_many
from fnbox.client.transport import Transport
from fnbox.delivery.tasks import cancel_and_wait
from fnbox.functions.v1 import invocation_pb2
from fnbox.telemetry.invoke import traced_invoke

__all__ = ["InvokeLane"]

log = logging.getLogger(__name__)

InvokeRequest = invocation_pb2.InvokeFunctionRequest
Result = invocation_pb2.InvocationResult


class InvokeLane:
    """Futures on top of ``invoke_many``: :meth:`invoke` submits a request and awaits its result.

    The stream is reopened after a failure; requests in flight on a broken stream fail with the
    stream's error (callers retry them through the bus).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        name: str,
        concurrency: int,
        timeout: float,
        idle_seconds: float,
    ) -> None:
        self.name = name
        self._transport = transport
        self._concurrency = concurrency
        self._timeout = timeout
        self._idle = idle_seconds
        self._queue: asyncio.Queue[InvokeRequest] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[Result]] = {}
        # Deadlines in slots of a sixteenth of the timeout, one timer for the earliest slot: an
        # invocation fails between ``timeout`` and 1/16 later. A timer per invocation cost a
        # TimerHandle, a heap push (Python comparisons) and a cancel for every call.
        self._grain = max(timeout / 16, 0.005)
        self._expiring: dict[int, set[str]] = {}  # slot -> request ids, earliest first
        self._expiry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.streams_opened = 0
        # Request id suffixes: random per lane, then counted (unique without a uuid per call).
        self._prefix = os.urandom(6).hex()
        self._count = itertools.count()

    @property
    def open(self) -> bool:
        """Whether the lane's stream is open (or being opened)."""
        return self._task is not None and not self._task.done()

    @traced_invoke
    async def invoke(self, request: InvokeRequest) -> Result:
        """Run one invocation (a fresh request_id suffix is added). Raises RPCError for
        platform faults, Unavailable when no answer came within the lane's timeout."""
        request.request_id = (
            f"{request.request_id or 'pipeline'}:{self._prefix}{next(self._count):x}"
        )
        return await self._submit(request)

    async def close(self) -> None:
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._task is not None:
            await cancel_and_wait([self._task])
        self._fail_all(Unavailable("the invoker is closed", code=grpc.StatusCode.UNAVAILABLE))

    async def _submit(self, request: InvokeRequest) -> Result:
        if self._closed:
            raise Unavailable("the invoker is closed", code=grpc.StatusCode.UNAVAILABLE)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        request_id = request.request_id
        # The clock only moves forward and the timeout is the lane's: slots come in order.
        slot = math.ceil((loop.time() + self._timeout) / self._grain)
        expiring = self._expiring.get(slot)
        if expiring is None:
            expiring = self._expiring[slot] = set()
            if self._expiry is None:
                self._expiry = loop.call_at(slot * self._grain, self._expire)
        expiring.add(request_id)
        self._waiting[request_id] = future
        self._queue.put_nowait(request)
        if not self.open:
            self._task = asyncio.create_task(self._run(), name=f"invoke-stream:{self.name}")
        try:
            return await future
        finally:
            expiring.discard(request_id)
            self._waiting.pop(request_id, None)

    def _expire(self) -> None:
        """Fail the invocations whose slot has passed; arm the timer for the next slot."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._expiring:
            slot = next(iter(self._expiring))
            if slot * self._grain > now + 0.001:  # a timer may fire a clock tick early
                self._expiry = loop.call_at(slot * self._grain, self._expire)
                return
            for request_id in self._expiring.pop(slot):
                future = self._waiting.get(request_id)
                if future is not None:
                    _time_out(future)

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                self.streams_opened += 1
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
                # Closed for idleness. A request submitted meanwhile found this task still
                # running and only queued itself: serve it on a new stream.
                if not self._waiting:
                    return
                continue
            except RPCError as error:
                log.warning("invoke stream %s broke: %s", self.name, error)
                self._fail_all(error)
            except Exception as error:  # a bug must not leave callers waiting forever
                log.exception("invoke stream %s failed", self.name)
                self._fail_all(Unavailable(str(error), code=grpc.StatusCode.UNAVAILABLE))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            if not self._waiting:
                return  # reopened by the next request

    async def _requests(self) -> AsyncIterator[InvokeRequest]:
        """The queued requests; ends once nothing was asked for ``idle`` seconds and nothing
        is in flight (which lets the stream close)."""
        while True:
            if not self._queue.empty():
                request = self._queue.get_nowait()  # no timeout to arm (the busy case)
            else:
                try:
                    async with asyncio.timeout(self._idle):
                        request = await self._queue.get()
                except TimeoutError:
                    if self._waiting:
                        continue
                    return
            if request.request_id in self._waiting:
                yield request

    def _fail_all(self, error: RPCError) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        # Requests still queued belong to the failed callers too: they will resubmit.
        while not self._queue.empty():
            self._queue.get_nowait()


def _time_out(future: asyncio.Future[Result]) -> None:
    if not future.done():
        future.set_exception(
            Unavailable(
                "no answer from the control service in time", code=grpc.StatusCode.UNAVAILABLE
            )
        )
