"""A multi-process gRPC load generator that reports its own CPU.

Worker processes stay up for the whole run (started once, with the ``spawn`` method) and each
drives its share of the callers on one grpc.aio channel per target. Requests and responses
stay raw bytes, so the generator spends no time on protobuf. Every caller loops: call, record
the latency, call again (a closed loop); only calls that complete inside the timed window
count, after a warm-up.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import grpc

from bench.procs import tree_cpu_seconds
from bench.stats import percentile


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One timed run: ``concurrency`` closed-loop callers of one unary method."""

    target: str
    method: str
    request: bytes
    concurrency: int
    duration_s: float
    warmup_s: float = 0.3
    metadata: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0


@dataclass(slots=True)
class _Share:
    calls: int = 0
    errors: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0


@dataclass(slots=True)
class LoadResult:
    """What one timed run measured (latencies in ms, CPU in seconds over the window)."""

    calls: int
    errors: int
    duration_s: float
    latencies_ms: list[float]
    loadgen_cpu_s: float
    server_cpu_s: float | None = None
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.calls / self.duration_s

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def loadgen_cores(self) -> float:
        """Cores' worth of CPU the load generator used during the window."""
        return self.loadgen_cpu_s / self.duration_s

    @property
    def server_cores(self) -> float | None:
        return None if self.server_cpu_s is None else self.server_cpu_s / self.duration_s


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(channel: grpc.aio.Channel, spec: LoadSpec, callers: int, begin: float) -> _Share:
    call = channel.unary_unary(spec.method, None, None)  # raw bytes both ways
    measure_from = begin + spec.warmup_s
    end = measure_from + spec.duration_s
    share = _Share()

    async def caller() -> None:
        while True:
            started = time.monotonic()
            if started >= end:
                return
            error = ""
            try:
                await call(spec.request, metadata=spec.metadata, timeout=spec.timeout_s)
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            done = time.monotonic()
            if measure_from <= done < end:
                if error:
                    share.errors += 1
                    share.first_error = share.first_error or error
                else:
                    share.calls += 1
                    share.latencies_ms.append((done - started) * 1000.0)
            elif error and done < measure_from:
                await asyncio.sleep(0.01)  # a warm-up failure: don't spin

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        before = _process_cpu()
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        share.cpu_s = _process_cpu() - before

    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    await asyncio.gather(cpu_window(), *(caller() for _ in range(callers)))
    return share


def _worker_main(conn: Connection) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    channels: dict[str, grpc.aio.Channel] = {}

    async def open_channel(target: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(target)

    while True:
        message = conn.recv()
        if message is None:
            break
        spec, callers, begin = message
        if spec.target not in channels:
            channels[spec.target] = loop.run_until_complete(open_channel(spec.target))
        conn.send(loop.run_until_complete(_drive(channels[spec.target], spec, callers, begin)))
    for channel in channels.values():
        loop.run_until_complete(channel.close(None))
    loop.close()


class LoadGenerator:
    """A fixed set of load-generating processes, reused for every run."""

    def __init__(self, processes: int = 2) -> None:
        context = mp.get_context("spawn")
        self._workers: list[tuple[BaseProcess, Connection]] = []
        for _ in range(processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
            process.start()
            child_end.close()
            self._workers.append((process, parent_end))

    def run(self, spec: LoadSpec, server_pid: int | None = None) -> LoadResult:
        """Run ``spec`` and, when ``server_pid`` is given, measure that process tree's CPU."""
        active = self._workers[: min(len(self._workers), spec.concurrency)]
        begin = time.monotonic() + 0.05
        for index, (_, conn) in enumerate(active):
            callers = spec.concurrency // len(active) + (
                1 if index < spec.concurrency % len(active) else 0
            )
            conn.send((spec, callers, begin))
        server_cpu: float | None = None
        if server_pid is not None:
            measure_from = begin + spec.warmup_s
            time.sleep(max(0.0, measure_from - time.monotonic()))
            before = tree_cpu_seconds(server_pid)
            time.sleep(max(0.0, measure_from + spec.duration_s - time.monotonic()))
            server_cpu = tree_cpu_seconds(server_pid) - before
        shares: list[_Share] = [conn.recv() for _, conn in active]
        latencies = [value for share in shares for value in share.latencies_ms]
        return LoadResult(
            calls=sum(share.calls for share in shares),
            errors=sum(share.errors for share in shares),
            duration_s=spec.duration_s,
            latencies_ms=latencies,
            loadgen_cpu_s=sum(share.cpu_s for share in shares),
            server_cpu_s=server_cpu,
            first_error=next((s.first_error for s in shares if s.first_error), ""),
        )

    def close(self) -> None:
        """Stop the worker processes."""
        for process, conn in self._workers:
            try:
                conn.send(None)
            except OSError:
                pass
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers.clear()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
