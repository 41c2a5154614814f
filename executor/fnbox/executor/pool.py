"""The worker pool's public API and dispatch: deadlines, specialisation, crash-loop guard.

A call finds (or has ``_specialise``d) a worker of its function, is sent on it and waits for
its reply under the function's deadline. Starting, evicting and replacing processes is the
Supervisor's (supervisor.py); policy objects (policy.py) decide when.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from fnbox.executor.codec import Frame
from fnbox.executor.errors import (
    CrashLoop,
    ExecutorClosed,
    ExecutorError,
    PayloadTooLarge,
    PoolOverloaded,
    ProtocolError,
    WorkerCrashed,
)
from fnbox.executor.limits import HostLimits
from fnbox.executor.messages import (
    HEADER_ALLOWANCE,
    decode_result,
    invoke_segments,
    load_frame,
    syntax_problem,
    timeout_result,
    user_error,
)
from fnbox.executor.policy import (
    CrashLoopGuard,
    FunctionLimits,
    ScalingPolicy,
    function_limits,
    worker_key,
)
from fnbox.executor.process import WorkerProcess, WorkerState
from fnbox.executor.settings import ExecutorSettings
from fnbox.executor.spans import inject_or_start, record_requests, recording
from fnbox.executor.supervisor import Supervisor
from fnbox.executor.types import (
    FunctionSpec,
    Invocation,
    InvocationResult,
    Outcome,
    PoolStats,
    SyntaxProblem,
    UserError,
)
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fnbox.executor")
_propagator = TraceContextTextMapPropagator()
# Deaths that count towards a function's crash loop (timeouts and evictions do not).
CRASH_REASONS = frozenset({"crashed", "oom", "protocol", "frame_too_large"})
LOAD_ERROR_TTL_S = 10.0
_DISPATCHABLE = (WorkerState.LOADING, WorkerState.READY)
_MAX_PREPARED = 256  # specs held (with their code): RunFunction makes one per call


def _expire(reply: asyncio.Future[Frame]) -> None:
    if not reply.done():
        reply.set_exception(TimeoutError())


class _LoadFailed(Exception):
    def __init__(self, result: InvocationResult) -> None:
        self.result = result


@dataclass(eq=False)
class _Function:
    """The workers specialised for one FunctionSpec.key, and the calls waiting for them."""

    key: str
    workers: list[WorkerProcess] = field(default_factory=list)
    starting: int = 0
    waiting: int = 0
    load_failure: tuple[InvocationResult, float] | None = None
    failure: ExecutorError | None = None
    failures: int = 0
    queue: deque[asyncio.Future[None]] = field(default_factory=deque)

    async def wait(self, recheck_s: float | None, deadline: float) -> None:
        """Wait to be woken by ``wake_one`` (a slot freed) or ``notify`` (state changed), at
        most ``recheck_s``; TimeoutError once the loop time ``deadline`` has passed (checked
        here rather than by a timeout around the whole acquisition, which cost every call a
        timer even when a worker was free)."""
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            raise TimeoutError
        fut = loop.create_future()
        self.queue.append(fut)
        until = deadline if recheck_s is None else min(deadline, loop.time() + recheck_s)
        try:
            async with asyncio.timeout_at(until):
                await fut
        except TimeoutError:
            pass
        finally:
            if not fut.done():
                fut.cancel()

    def wake_one(self) -> None:
        while self.queue:
            fut = self.queue.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def notify(self) -> None:
        queue, self.queue = self.queue, deque()
        for fut in queue:
            if not fut.done():
                fut.set_result(None)


class WorkerPool:
    """A pool of sandboxed Node workers; one worker only ever serves one function version."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings, on_reaped=self._reaped, on_round=self._forget)
        self._crash_guard = CrashLoopGuard.from_settings(settings)
        self._scaling = ScalingPolicy.from_settings(settings)
        self._functions: dict[str, _Function] = {}
        self._active = 0
        self._drained = asyncio.Event()
        self._closed = False
        # id(spec) → (spec, spec with its worker key, limits); the entry holds the spec, so
        # its id is not reused while the entry lives.
        self._prepared: dict[int, tuple[FunctionSpec, FunctionSpec, FunctionLimits]] = {}

    @property
    def host(self) -> HostLimits:
        """What the host lets the executor enforce (detected by ``start``)."""
        return self.supervisor.host

    # -- public API ----------------------------------------------------------------------
    async def start(self) -> None:
        """Detect the host's limits and pre-start the warm pool."""
        await self.supervisor.start()

    async def invoke(self, spec: FunctionSpec, invocation: Invocation) -> InvocationResult:
        """Run one invocation of ``spec``; a user's exception is a result, not an error.

        Raises WorkerCrashed, PoolOverloaded, CrashLoop, ExecutorClosed or PayloadTooLarge.
        """
        if self._closed:
            raise ExecutorClosed("the executor is shutting down")
        function_key = spec.key
        prepared = self._prepared.get(id(spec))
        if prepared is None or prepared[0] is not spec:
            prepared = self._prepare(spec)
        _, spec, limits = prepared
        segments = invoke_segments(invocation)
        size = sum(map(len, segments)) + HEADER_ALLOWANCE
        if size > self.settings.max_frame_bytes:
            raise PayloadTooLarge(f"invocation of ~{size} bytes exceeds the frame cap")
        self._active += 1
        try:
            if not recording():
                return await self._invoke(spec, invocation, limits, segments, None)
            # Under the caller's trace context when the invocation carries one (else the
            # current one).
            parent = _propagator.extract(invocation.trace) if invocation.trace else None
            with tracer.start_as_current_span(
                "executor.invoke", context=parent, attributes={"fnbox.function.key": function_key}
            ) as span:
                result = await self._invoke(spec, invocation, limits, segments, span)
                span.set_attribute("fnbox.worker.pid", result.worker_pid)
                span.set_attribute("fnbox.outcome", str(result.outcome))
                record_requests(span, result)
                return result
        finally:
            self._active -= 1
            if self._active == 0:
                self._drained.set()

    def _prepare(self, spec: FunctionSpec) -> tuple[FunctionSpec, FunctionSpec, FunctionLimits]:
        """``spec``'s limits and the spec keyed by its worker key, kept for the next call of
        the same spec object (callers that reuse one per version pay for this once)."""
        limits = function_limits(spec, self.settings)
        key = worker_key(spec, limits, self.settings)
        keyed = spec if key == spec.key else dataclasses.replace(spec, key=key)
        if len(self._prepared) >= _MAX_PREPARED:
            self._prepared.clear()
        prepared = self._prepared[id(spec)] = (spec, keyed, limits)
        return prepared

    async def check_syntax(self, code: str) -> SyntaxProblem | None:
        """Compile ``code`` (running nothing) in a worker that never loads user code."""
        if self._closed:
            raise ExecutorClosed("the executor is shutting down")
        checker = await self.supervisor.get_checker()
        try:
            async with asyncio.timeout(self.settings.load_timeout_ms / 1000):
                frame = await checker.call({"t": "check"}, [code.encode()])
        except TimeoutError:
            checker.kill("timeout")
            raise WorkerCrashed("the syntax check timed out") from None
        return syntax_problem(frame.header.get("error"))

    def stats(self) -> PoolStats:
        sup = self.supervisor
        live = [w for w in sup.workers if w.alive]
        by_key = Counter(w.key for w in live if w.key is not None)
        return PoolStats(
            workers_total=len(live),
            workers_busy=sum(1 for w in live if w.in_flight),
            workers_warm=sum(1 for w in sup.generic if w.alive),
            in_flight=sum(w.in_flight for w in live),
            by_key=dict(by_key),
            kills=dict(sup.kills),
            crash_looping=self._crash_guard.blocked(time.monotonic()),
            spawned=sup.spawned,
            host_limits=sup.host.summary(),
        )

    async def close(self, grace_s: float | None = None) -> None:
        """Stop accepting calls, let in-flight ones finish up to the grace, stop every worker."""
        self._closed = True
        for fn in self._functions.values():
            fn.notify()
        grace = self.settings.close_grace_s if grace_s is None else grace_s
        if self._active:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()
        await self.supervisor.close()

    # -- dispatch ------------------------------------------------------------------------
    async def _invoke(
        self,
        spec: FunctionSpec,
        invocation: Invocation,
        limits: FunctionLimits,
        segments: list[bytes],
        span: trace.Span | None,
    ) -> InvocationResult:
        try:
            worker = await self._acquire(spec, limits)
        except _LoadFailed as failed:
            return failed.result
        except TimeoutError:
            waited = self.settings.acquire_timeout_s
            raise PoolOverloaded(f"no worker for {spec.key} within {waited}s") from None
        if span is None:
            # The caller's trace headers as they came, else the current context's (or new).
            carrier = invocation.trace
            if "traceparent" not in carrier:
                carrier = {}
                inject_or_start(carrier)
        else:
            carrier = dict(invocation.trace)
            _propagator.inject(carrier)
            span.set_attribute("fnbox.worker.pid", worker.pid)
        header = {"t": "invoke", "kind": invocation.kind, "trace": carrier}
        try:
            reply = worker.send(header, segments, hold=invocation.hold)
            if not worker.loaded.is_set():
                # Sent right behind the load frame; the function's deadline starts when the
                # worker has loaded it (a hung top level is the load timeout's business).
                await worker.loaded.wait()
                failure = self._functions[spec.key].load_failure
                if worker.death_reason == "load_timeout" and failure is not None:
                    return failure[0]
            t0 = time.perf_counter()
            if worker.write_buffered():
                async with asyncio.timeout(limits.timeout_s):
                    await worker.drain()
                    frame = await reply
            else:
                # The usual case, nothing to drain: the deadline fails the reply future itself
                # (a timer, not asyncio.timeout's context manager and task cancellation).
                loop = asyncio.get_running_loop()
                timer = loop.call_at(loop.time() + limits.timeout_s, _expire, reply)
                try:
                    frame = await reply
                finally:
                    timer.cancel()
        except TimeoutError:
            worker.kill("timeout")
            return timeout_result(limits, worker.pid, (time.perf_counter() - t0) * 1000)
        finally:
            worker.last_used = time.monotonic()
            fn = self._functions.get(spec.key)
            if fn is not None and fn.waiting:
                fn.wake_one()  # A slot is free (or the worker is gone: then all are woken).
        try:
            return decode_result(frame, worker.pid)
        except ProtocolError as exc:
            worker.kill("protocol")
            raise WorkerCrashed(f"worker {worker.pid} sent a bad result: {exc}") from exc

    async def _acquire(self, spec: FunctionSpec, limits: FunctionLimits) -> WorkerProcess:
        """A dispatchable worker of ``spec``; TimeoutError after ``acquire_timeout_s``."""
        deadline = asyncio.get_running_loop().time() + self.settings.acquire_timeout_s
        fn = self._functions.get(spec.key)
        if fn is None:
            fn = self._functions[spec.key] = _Function(spec.key)
        if fn.waiting >= self.settings.max_queued_per_function:
            raise PoolOverloaded(f"too many calls waiting for {spec.key}")
        fn.waiting += 1
        seen_failures = fn.failures
        try:
            while True:
                if self._closed:
                    raise ExecutorClosed("the executor is shutting down")
                retry_after = (
                    self._crash_guard.retry_after(spec.key, time.monotonic())
                    if self._crash_guard.has_blocked
                    else None
                )
                if retry_after is not None:
                    why = self._crash_guard.why(spec.key)
                    raise CrashLoop(
                        f"the function's workers keep crashing; it is refused for "
                        f"{retry_after:.0f} s" + (f" (the last crash: {why})" if why else ""),
                        key=spec.key,
                        retry_after_s=retry_after,
                    )
                if fn.load_failure is not None:
                    result, expires = fn.load_failure
                    if time.monotonic() < expires:
                        raise _LoadFailed(result)
                    fn.load_failure = None
                if fn.failures > seen_failures and fn.failure is not None:
                    raise fn.failure
                # One pass (no list or generator per call): drop dead workers, find the
                # least busy dispatchable one.
                worker: WorkerProcess | None = None
                least = 0
                dead = False
                for candidate in fn.workers:
                    state = candidate.state
                    if state is WorkerState.DEAD:
                        dead = True
                    elif state in _DISPATCHABLE:
                        in_flight = candidate.in_flight
                        if worker is None or in_flight < least:
                            worker, least = candidate, in_flight
                if dead:
                    fn.workers = [w for w in fn.workers if w.alive]
                scaling = self._scaling
                cpu = worker.cpu_load() if worker is not None and scaling.asks_cpu(least) else None
                if scaling.wants_more(
                    len(fn.workers), fn.starting, least, cpu
                ) and self.supervisor.make_room(fn.key):
                    fn.starting += 1
                    self.supervisor.background(self._specialise(fn, spec, limits))
                if worker is not None and scaling.has_slot(least):
                    return worker
                # With no worker and no room in the pool, re-check now and then: another
                # function's worker may become idle (and evictable) without waking us.
                await fn.wait(None if fn.workers or fn.starting else 0.05, deadline)
        finally:
            fn.waiting -= 1

    async def _specialise(self, fn: _Function, spec: FunctionSpec, limits: FunctionLimits) -> None:
        """Turn a warm generic worker (or a new one) into a worker of ``spec``."""
        worker: WorkerProcess | None = None
        try:
            # A no-network worker gets its namespace at spawn: no warm worker will do.
            isolate = not spec.network and self.host.netns
            worker = None if isolate else self.supervisor.take_generic(limits.memory_mib)
            if worker is None:
                worker = await self.supervisor.spawn(limits.memory_mib, network=not isolate)
            worker.key = spec.key
            worker.state = WorkerState.LOADING
            header, segments = load_frame(spec, limits, self.settings)
            try:
                ready_fut = worker.send(header, segments)
            except PayloadTooLarge:
                worker.kill("load_failed")
                raise
            # Calls may be sent right behind the load frame: the worker runs them once loaded,
            # which saves the first call a round trip.
            fn.workers.append(worker)
            fn.notify()
            await worker.drain()
            try:
                async with asyncio.timeout(self.settings.load_timeout_ms / 1000):
                    ready = await ready_fut
            except TimeoutError:
                self._load_failed(fn, worker, Outcome.TIMEOUT, "TimeoutError", "loading timed out")
                worker.kill("load_timeout")
                return
            error = user_error(ready.header.get("error"))
            if error is not None:
                result = InvocationResult(Outcome.ERROR, error=error, worker_pid=worker.pid)
                fn.load_failure = (result, time.monotonic() + LOAD_ERROR_TTL_S)
                fn.workers.remove(worker)
                self.supervisor.background(self._retire(worker, "load_failed"))
                return
            if worker.alive:
                worker.state = WorkerState.READY
        except ExecutorError as exc:
            log.warning("cannot start a worker for %s: %s", spec.key, exc)
            fn.failure, fn.failures = exc, fn.failures + 1
        finally:
            if worker is not None:
                worker.loaded.set()
            fn.starting -= 1
            fn.notify()

    async def _retire(self, worker: WorkerProcess, reason: str) -> None:
        """Stop a worker once the calls already sent to it have their replies."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.max_timeout_ms / 1000):
                await worker.settle()
        await worker.stop(reason)

    def _load_failed(
        self, fn: _Function, worker: WorkerProcess, outcome: Outcome, name: str, what: str
    ) -> None:
        limit = self.settings.load_timeout_ms
        error = UserError(name=name, message=f"{what} after {limit} ms")
        result = InvocationResult(outcome, error=error, duration_ms=limit, worker_pid=worker.pid)
        fn.load_failure = (result, time.monotonic() + LOAD_ERROR_TTL_S)

    def _reaped(self, worker: WorkerProcess) -> None:
        """A worker is gone: count a crash against its function, wake the calls waiting."""
        key = worker.key
        if key is None:
            return
        reason = worker.death_reason or "unknown"
        if reason in CRASH_REASONS and self._crash_guard.record_crash(
            key, time.monotonic(), worker.death_message
        ):
            log.warning(
                "function %s is crash-looping (%d crashes in %.0fs): refused for %.0fs",
                key,
                self._crash_guard.max_crashes,
                self._crash_guard.window_s,
                self._crash_guard.cooldown_s,
            )
        fn = self._functions.get(key)
        if fn is not None:
            fn.notify()

    def _forget(self) -> None:
        """Drop the state of functions that have no worker and no call any more."""
        for key, fn in list(self._functions.items()):
            if not fn.workers and not fn.waiting and not fn.starting and fn.load_failure is None:
                del self._functions[key]
