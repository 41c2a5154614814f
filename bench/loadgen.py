"""A multi-process load generator (gRPC unary or HTTP POST) that reports its own CPU.

Worker processes stay up for the whole run (started once, with the ``spawn`` method) and each
drives its share of the callers on one grpc.aio channel per target (or, for HTTP, one
keep-alive connection per caller).
gRPC requests and responses stay raw bytes, so the generator spends no time on protobuf. Every
caller loops: call, record the latency, call again (a closed loop); only calls that complete
inside the timed window count, after a warm-up.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
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


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """One timed run: ``concurrency`` closed-loop callers POSTing ``body`` to ``url``."""

    url: str
    body: bytes
    concurrency: int
    duration_s: float
    warmup_s: float = 0.3
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    timeout_s: float = 10.0


Spec = LoadSpec | HttpSpec


@dataclass(slots=True)
class _Share:
    calls: int = 0
    errors: int = 0
    ok_total: int = 0
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
    ok_total: int = 0  # successful calls including warm-up and stragglers
    probes: dict[str, float] = field(default_factory=dict)  # probe deltas over the window

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


Attempt = Callable[[], Awaitable[str]]  # one call; returns "" or what went wrong


def _grpc_attempt(channel: grpc.aio.Channel, spec: LoadSpec) -> Attempt:
    call = channel.unary_unary(spec.method, None, None)  # raw bytes both ways

    async def attempt() -> str:
        try:
            await call(spec.request, metadata=spec.metadata, timeout=spec.timeout_s)
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        return ""

    return attempt


def _http_attempt(spec: HttpSpec) -> Attempt:
    """A keep-alive HTTP/1.1 connection per caller, spoken directly on asyncio streams.

    A full client (aiohttp) costs ~200-300 µs of CPU per request here, which on a 2-core
    machine would be taken from the system under test; this costs a fraction of that.
    """
    url = urllib.parse.urlsplit(spec.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = [f"POST {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1"]
    head += [f"host: {url.netloc}", f"content-length: {len(spec.body)}"]
    head += [f"{name}: {value}" for name, value in spec.headers]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + spec.body
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def exchange() -> int:
        if not streams:
            streams.append(await asyncio.open_connection(host, port))
        reader, writer = streams[0]
        writer.write(request)
        response_head = await reader.readuntil(b"\r\n\r\n")
        status = int(response_head[9:12])
        length = 0
        for line in response_head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        return status

    async def attempt() -> str:
        try:
            status = await asyncio.wait_for(exchange(), spec.timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            if streams:
                streams.pop()[1].close()  # reconnect on the next attempt
            return repr(exc)
        return "" if status < 300 else f"HTTP {status}"

    return attempt


async def _drive(attempts: list[Attempt], spec: Spec, begin: float) -> _Share:
    measure_from = begin + spec.warmup_s
    end = measure_from + spec.duration_s
    share = _Share()

    async def caller(attempt: Attempt) -> None:
        while True:
            started = time.monotonic()
            if started >= end:
                return
            error = await attempt()
            done = time.monotonic()
            if not error:
                share.ok_total += 1
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
    await asyncio.gather(cpu_window(), *(caller(attempt) for attempt in attempts))
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
        if isinstance(spec, LoadSpec):
            if spec.target not in channels:
                channels[spec.target] = loop.run_until_complete(open_channel(spec.target))
            attempts = [_grpc_attempt(channels[spec.target], spec)] * callers
        else:
            attempts = [_http_attempt(spec) for _ in range(callers)]
        conn.send(loop.run_until_complete(_drive(attempts, spec, begin)))
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

    def run(
        self,
        spec: Spec,
        server_pid: int | None = None,
        probes: Mapping[str, Callable[[], float]] | None = None,
    ) -> LoadResult:
        """Run ``spec``; when ``server_pid`` is given, measure that process tree's CPU, and
        report how much each probe's value changed over the timed window."""
        active = self._workers[: min(len(self._workers), spec.concurrency)]
        begin = time.monotonic() + 0.05
        for index, (_, conn) in enumerate(active):
            callers = spec.concurrency // len(active) + (
                1 if index < spec.concurrency % len(active) else 0
            )
            conn.send((spec, callers, begin))
        probes = dict(probes or {})
        if server_pid is not None:
            probes["server_cpu_s"] = lambda: tree_cpu_seconds(server_pid)
        measure_from = begin + spec.warmup_s
        time.sleep(max(0.0, measure_from - time.monotonic()))
        before = {name: probe() for name, probe in probes.items()}
        time.sleep(max(0.0, measure_from + spec.duration_s - time.monotonic()))
        deltas = {name: probe() - before[name] for name, probe in probes.items()}
        server_cpu = deltas.pop("server_cpu_s", None)
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
            ok_total=sum(share.ok_total for share in shares),
            probes=deltas,
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
