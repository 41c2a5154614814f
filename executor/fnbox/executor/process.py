"""One Node worker process: spawn with limits, handshake, frames in and out, kill, reap.

Mechanism only: *when* to start, stop or replace a worker is the pool's (and policy's) call.
A worker that died, timed out or garbled its stream is never trusted again: its stream is
dropped and its process group SIGKILLed, and every call in flight on it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from fnbox.executor.codec import Frame, FrameDecoder, encode_frame
from fnbox.executor.errors import (
    ExecutorError,
    FrameTooLarge,
    ProtocolError,
    WorkerCrashed,
    WorkerStartFailed,
)
from fnbox.executor.limits import (
    HostLimits,
    WorkerCgroup,
    limit_wrapper,
    private_bytes,
    read_small,
)
from fnbox.executor.settings import JS_DIR, ExecutorSettings

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
_TICKS = os.sysconf("SC_CLK_TCK")
_names = itertools.count(1)
# Frames held for one write are written at once when they reach this size.
OUTBOX_BYTES = 256 * 1024
# A worker's CPU load is measured over at least this long (the kernel counts CPU time in
# ticks of 10 ms: ~4% resolution), and a sample older than CPU_STALE_S says nothing of now.
CPU_WINDOW_S = 0.25
CPU_STALE_S = 1.0


# What V8 prints on stderr when a worker's heap reaches --max-old-space-size (then it aborts).
HEAP_EXHAUSTED = (b"JavaScript heap out of memory", b"Reached heap limit")
# Lines of a crash report that say nothing to the function's author: native stack frames
# ("  3: 0x1124384 [node]"), JS stack frames ("    at f (function.js:1:2)"), section markers
# and V8's GC trace lines.
_NOISE = re.compile(r"\s*(\d+: 0x[0-9a-f]+.*|at .*|<---.*--->|-----.*-----|\[\d+:0x[0-9a-f]+\].*|)")
# What js/fdio.js says before it SIGKILLs its own process to exit (node would hang on the
# read it has waiting in the threadpool): the exit status the signal hides.
_EXIT_STATUS = re.compile(r"fnbox-worker: exit status (\d+)")


# Why the service stopped a worker, for the calls in flight on it (the kill's reason).
_STOPPED = {
    "timeout": "another invocation on it ran past its time limit",
    "load_timeout": "loading the function's code ran past its time limit",
    "load_failed": "loading the function's code failed",
    "protocol": "it broke the executor's frame protocol",
    "frame_too_large": "it sent a frame over the size cap (executor max_frame_bytes)",
    "crashed": "its output ended",
    "unresponsive": "it stopped answering pings",
    "idle_cpu": "it used CPU with no invocation in flight",
    "handshake_timeout": "it did not start in time",
    "spawn_failed": "it could not be started",
    "lru": "the pool needed its room (it was the least recently used)",
    "respecialise": "its memory limit could not be changed",
    "closed": "the executor is shutting down",
}


def describe_death(
    exit_code: int,
    stderr: str,
    *,
    heap_exhausted: bool,
    oom_killed: bool,
    heap_mib: int,
    memory_mib: int,
) -> tuple[str, str]:
    """Why a worker died on its own, for the callers whose calls it took with it: a cause
    (``heap_limit``, ``memory_limit``, ``signal`` or ``exit``) and one readable sentence
    without the stack frames of a crash report (the service log keeps those)."""
    if heap_exhausted:
        return "heap_limit", (
            f"the function ran out of memory: its worker's JavaScript heap reached the "
            f"{heap_mib} MiB limit (executor heap_mib), and the worker was stopped"
        )
    if oom_killed:
        return "memory_limit", (
            f"the function ran out of memory: its worker reached the function's {memory_mib} "
            f"MiB memory limit (memory_mib) and the kernel killed it"
        )
    said: list[str] = []
    for line in stderr.splitlines():
        if (status := _EXIT_STATUS.fullmatch(line.strip())) is not None:
            exit_code = int(status.group(1)) if exit_code == -signal.SIGKILL else exit_code
        elif not _NOISE.fullmatch(line):
            said.append(line.strip())
    if exit_code < 0:
        try:
            how = f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            how = f"was killed by signal {-exit_code}"
        cause = "signal"
    else:
        how, cause = f"exited with status {exit_code}", "exit"
    last = said[-1][:300] if said else ""
    return cause, f"the function's worker {how}" + (f": {last}" if last else "")


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class WorkerState(StrEnum):
    STARTING = "starting"
    GENERIC = "generic"
    LOADING = "loading"
    READY = "ready"
    DEAD = "dead"


# V8's young generation (--max-semi-space-size, MiB): a semi-space grows to this cap only
# under sustained allocation and V8's memory reducer shrinks it back once the worker idles
# (~10 s). At 8 MiB a busy worker scavenges a quarter as often as at 2, and objects alive
# across its in-flight invocations' awaits are promoted to old space less often (bench:
# V8's GC helper threads 3.5 -> 1.5 us per destination invocation). The young generation
# (3 x the cap) is memory the function's cgroup pays for, so a function with less than
# SEMI_SPACE_MIN_MEMORY_MIB keeps 2 MiB semi-spaces (6 MiB young generation, not 24).
SEMI_SPACE_MIB = 8
SMALL_SEMI_SPACE_MIB = 2
SEMI_SPACE_MIN_MEMORY_MIB = 128


def semi_space_mib(memory_mib: int) -> int:
    """The semi-space cap of a worker whose memory cgroup allows ``memory_mib``."""
    return SEMI_SPACE_MIB if memory_mib >= SEMI_SPACE_MIN_MEMORY_MIB else SMALL_SEMI_SPACE_MIB


def worker_command(
    settings: ExecutorSettings, *, memory_mib: int | None = None, fd_io: bool = False
) -> list[str]:
    """The worker's argv: permission model on, only the runtime folder readable.

    ``memory_mib``: the function's memory limit (default: the platform's), which sets the
    young generation's size. ``fd_io``: frames over fds 0/1 through node:fs (a faster start,
    see js/fdio.js); only without RLIMIT_AS, which the threadpool this starts could exceed.
    """
    memory = settings.memory_mib if memory_mib is None else memory_mib
    script = settings.worker_script.resolve()
    readable = sorted({str(JS_DIR), str(script.parent)})
    return [
        str(settings.node_path),
        "--permission",
        *(f"--allow-fs-read={d}" for d in readable),
        "--disallow-code-generation-from-strings",
        f"--max-old-space-size={settings.heap_mib}",
        f"--max-semi-space-size={semi_space_mib(memory)}",
        str(script),
        f"--max-frame-bytes={settings.max_frame_bytes}",
        *(["--fd-io"] if fd_io else []),
    ]


def worker_env(settings: ExecutorSettings) -> dict[str, str]:
    """A minimal explicit environment: nothing inherited (no NODE_OPTIONS, no extra CAs)."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", **settings.worker_env}


class _WorkerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's subprocess protocol, except that stdout goes to ``on_data`` / ``on_eof``
    (stdin and stderr stay streams)."""

    def __init__(
        self,
        on_data: Callable[[bytes], None],
        on_eof: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(limit=1024 * 1024, loop=loop)
        self._on_data = on_data
        self._on_eof = on_eof

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd == 1:
            self._on_data(data if isinstance(data, bytes) else data.encode())
        else:
            super().pipe_data_received(fd, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        super().pipe_connection_lost(fd, exc)
        if fd == 1:
            self._on_eof()


class _DirectStdout(asyncio.Protocol):
    """The worker's stdout pipe protocol, swapped in for asyncio's own once the process is
    up: asyncio's subprocess transport hands each chunk to the process protocol through
    ``call_soon``, a whole loop iteration later; this one calls ``on_data`` from the read
    callback itself (a reply wakes its caller one iteration sooner). The end of the pipe
    still goes through asyncio's protocol (process exit bookkeeping, then ``on_eof``).

    Order is kept: a chunk read before the swap was queued with ``call_soon`` in that
    earlier iteration and runs before the next iteration's read callbacks."""

    def __init__(self, on_data: Callable[[bytes], None], inner: asyncio.BaseProtocol) -> None:
        self._on_data = on_data
        self._inner = inner

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def eof_received(self) -> bool | None:
        if isinstance(self._inner, asyncio.Protocol):
            return self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)


class WorkerProcess:
    """One child Node process speaking PROTOCOL.md over its stdin/stdout."""

    def __init__(
        self,
        settings: ExecutorSettings,
        host: HostLimits,
        *,
        memory_mib: int,
        network: bool = True,
        on_exit: Callable[[WorkerProcess], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = f"w{next(_names)}"
        self.memory_mib = memory_mib
        # No network: an empty network namespace, where the host allows one.
        self._netns = [] if network else host.netns_prefix()
        self.cgroup = WorkerCgroup(host, self.name)
        self._address_space_mib = None if host.memory else settings.rlimit_as_mib
        self._on_exit = on_exit
        self.state = WorkerState.STARTING
        self.key: str | None = None
        self.pid = 0
        self.death_reason: str | None = None
        # What its callers were told when it died (the error's message).
        self.death_message = ""
        self.exit_code: int | None = None
        self.started_at = time.monotonic()
        self.last_used = self.started_at  # end of the last call
        self.last_alive = self.started_at  # last answered ping
        self.hello_ms = 0.0
        self._memory = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._decoder = FrameDecoder(max_frame_bytes=settings.max_frame_bytes)
        self._ids = itertools.count(1)
        self._hello: asyncio.Future[Frame] | None = None
        # Frames held for one write at the start of the next loop iteration (None: nothing
        # held; see send).
        self._outbox: list[bytes] | None = None
        self._outbox_bytes = 0
        # The batch window's timer while held frames wait for it (see send).
        self._window: asyncio.TimerHandle | None = None
        self._batch_window_s = settings.batch_window_ms / 1000
        # (when, CPU seconds) of the last sample, and the load it measured (see cpu_load).
        self._cpu_mark: tuple[float, float] | None = None
        self._cpu_load: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr_budget = settings.max_stderr_bytes
        self.stderr_tail = b""
        # Whether V8 reported its heap exhausted on stderr (the report may outgrow the tail).
        self.heap_exhausted = False
        self.exited = asyncio.Event()
        # Set by the pool once a `load` has been answered (or has failed).
        self.loaded = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Worker {self.name} pid={self.pid} {self.state} key={self.key!r}>"

    # -- what policy may read ------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def alive(self) -> bool:
        return self.state is not WorkerState.DEAD

    @property
    def memory_bytes(self) -> int:
        return self._memory

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system, all threads) the worker has used so far."""
        try:
            fields = read_small(f"/proc/{self.pid}/stat").rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _TICKS
        except (OSError, ValueError, IndexError):
            return None

    def cpu_load(self) -> float | None:
        """The fraction of a core the worker used lately (over CPU_WINDOW_S or more), or None
        while unknown. Reads /proc at most once per window: cheap enough for the scaling
        policy to ask whenever a worker is busy."""
        now = time.monotonic()
        mark = self._cpu_mark
        if mark is not None and now - mark[0] < CPU_WINDOW_S:
            return self._cpu_load
        cpu = self.cpu_seconds()
        if cpu is None:
            return self._cpu_load
        elapsed = now - mark[0] if mark is not None else 0.0
        # An old sample would average a busy moment with the idle time before it.
        self._cpu_load = (
            (cpu - mark[1]) / elapsed if mark is not None and elapsed <= CPU_STALE_S else None
        )
        self._cpu_mark = (now, cpu)
        return self._cpu_load

    def refresh_memory(self) -> int:
        """Re-measure memory: the cgroup's charge, else private resident pages."""
        usage = self.cgroup.memory_usage()
        if usage is None and self.pid:
            usage = private_bytes(self.pid)
        self._memory = usage or 0
        return self._memory

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the child with its OS limits and wait for its hello frame."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        # Ready before the spawn: stdout is decoded as soon as it arrives.
        self._hello = loop.create_future()
        join: asyncio.Future[None] | None = None
        try:
            self.cgroup.create(memory_mib=self.memory_mib, pids_max=self.settings.pids_max)
            # The worker joins its cgroups once it runs, while node starts: joining costs the
            # joining task an RCU grace period in the kernel (cgroup migration takes a per-CPU
            # rwsem for writing), 10-15 ms on a 2-core VM, a quarter of node's start when the
            # wrapper joins before its exec. Node's own start-up pages (3-6 MiB) then stay
            # charged to the service's cgroup (kernels no longer move charges); all that the
            # function allocates is charged to the worker's, since no user code reaches the
            # worker before start() has seen it join.
            wrapper = limit_wrapper(
                procs_files=(),
                nofile=self.settings.nofile,
                address_space_mib=self._address_space_mib,
            )
            transport, protocol = await loop.subprocess_exec(
                lambda: _WorkerProtocol(self._stdout_data, self._stdout_eof, loop),
                *wrapper,
                *self._netns,
                *worker_command(
                    self.settings,
                    memory_mib=self.memory_mib,
                    fd_io=self._address_space_mib is None,
                ),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=worker_env(self.settings),
                cwd=str(JS_DIR),
                start_new_session=True,
            )
            self._proc = asyncio.subprocess.Process(transport, protocol, loop)
            if self.cgroup.procs_files:
                join = asyncio.ensure_future(
                    asyncio.to_thread(self.cgroup.join, transport.get_pid())
                )
                # Read even when start() gives up first (a failed hello).
                join.add_done_callback(_retrieve)
            stdout = transport.get_pipe_transport(1)
            if isinstance(stdout, asyncio.ReadTransport):
                stdout.set_protocol(_DirectStdout(self._stdout_data, stdout.get_protocol()))
        except (OSError, ValueError, RuntimeError) as exc:
            self.state = WorkerState.DEAD
            self.death_reason = "spawn_failed"
            self.cgroup.remove()
            self.exited.set()
            raise WorkerStartFailed(f"cannot start node worker: {exc}") from exc
        self.pid = self._proc.pid
        # stderr first: _reap waits for it. Frames on stdout are decoded as they arrive.
        self._tasks = [
            asyncio.create_task(self._drain_stderr(), name=f"{self.name}-stderr"),
            asyncio.create_task(self._reap(), name=f"{self.name}-reap"),
            *self._tasks,
        ]
        if self.state is WorkerState.DEAD:  # Stopped while it was being spawned.
            self._signal(signal.SIGKILL)
            raise WorkerStartFailed(f"worker {self.pid} was stopped while starting")
        try:
            async with asyncio.timeout(self.settings.handshake_timeout_s):
                hello = await self._hello
                if join is not None:
                    await join
        except TimeoutError:  # (an OSError: before that clause)
            self.kill("handshake_timeout")
            raise WorkerStartFailed(
                f"worker {self.pid} sent no hello in {self.settings.handshake_timeout_s}s"
            ) from None
        except OSError as exc:
            self.kill("spawn_failed")
            raise WorkerStartFailed(f"worker {self.pid} could not join its cgroups: {exc}") from exc
        except WorkerCrashed as exc:
            raise WorkerStartFailed(f"worker {self.pid} died before its hello: {exc}") from exc
        if hello.header.get("v") != PROTOCOL_VERSION:
            self.kill("protocol")
            raise WorkerStartFailed(f"worker speaks protocol {hello.header.get('v')!r}")
        self.hello_ms = (time.perf_counter() - t0) * 1000
        self.state = WorkerState.GENERIC

    def kill(self, reason: str, error: ExecutorError | None = None) -> None:
        """SIGKILL the worker's process group now; fail every call in flight on it."""
        if self.state is WorkerState.DEAD:
            return
        self._mark_dead(reason, error)
        self._signal(signal.SIGKILL)

    async def stop(self, reason: str, error: ExecutorError | None = None) -> None:
        """Graceful stop: close stdin (the worker exits on EOF), then SIGKILL after the grace."""
        if self.state is not WorkerState.DEAD:
            self._mark_dead(reason, error)
            self._outbox = None
            if self._proc and self._proc.stdin:
                with contextlib.suppress(OSError, RuntimeError):
                    self._proc.stdin.close()
            self._signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.kill_grace_s):
                await self.exited.wait()
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self.exited.wait()

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def _mark_dead(self, reason: str, error: ExecutorError | None) -> None:
        self.state = WorkerState.DEAD
        self.death_reason = reason
        exc = error or WorkerCrashed(
            f"the function's worker was stopped: {_STOPPED.get(reason, reason)} "
            f"(worker {self.pid})",
            cause=reason,
        )
        self.death_message = exc.message
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(exc)
            self._hello.exception()  # start() may already have given up on it.
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()

    async def _reap(self) -> None:
        assert self._proc is not None
        self.exit_code = await self._proc.wait()
        # Anything the worker left in its group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        # Let stderr reach EOF so that a crash report carries the worker's last words.
        await asyncio.wait(self._tasks[:1], timeout=0.2)
        oom_killed = self.cgroup.oom_kills() > 0
        if self.state is not WorkerState.DEAD:
            tail = self.stderr_tail.decode(errors="replace")
            log.warning(
                "worker %s (%s) exited with %s: %s",
                self.pid,
                self.key or "generic",
                self.exit_code,
                tail.strip()[-300:],
            )
            cause, message = describe_death(
                self.exit_code,
                tail,
                heap_exhausted=self.heap_exhausted,
                oom_killed=oom_killed,
                heap_mib=self.settings.heap_mib,
                memory_mib=self.memory_mib,
            )
            # Out of memory: the same input would most likely exhaust it again (a caller that
            # retries anyway, like the pipeline, gets a new worker).
            crash = WorkerCrashed(
                f"{message} (worker {self.pid})",
                cause=cause,
                retryable=cause not in ("heap_limit", "memory_limit"),
            )
            self._mark_dead("crashed", crash)
        if oom_killed and self.death_reason in ("crashed", "protocol"):
            self.death_reason = "oom"
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for _ in range(20):
            if self.cgroup.remove():
                break
            await asyncio.sleep(0.01)
        self.exited.set()
        if self._on_exit is not None:
            self._on_exit(self)

    def _stdout_data(self, data: bytes) -> None:
        """Called by the event loop with each chunk of the worker's stdout (no reader task:
        a reply wakes its caller straight from the loop's read callback)."""
        if self.state is WorkerState.DEAD:
            return  # never trusted again; its calls have failed already
        try:
            for frame in self._decoder.feed(data):
                self._dispatch(frame)
        except FrameTooLarge as exc:
            log.warning("worker %s (%s): %s; killing it", self.pid, self.key, exc)
            self.kill("frame_too_large")
        except ProtocolError as exc:
            log.warning("worker %s (%s): protocol violation: %s", self.pid, self.key, exc)
            self.kill("protocol")

    def _stdout_eof(self) -> None:
        if self.state is not WorkerState.DEAD:
            self._tasks.append(asyncio.create_task(self._stdout_closed()))

    async def _stdout_closed(self) -> None:
        # EOF: the process is most likely exiting; let _reap report it with its status.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self.exited.wait()
        self.kill("crashed")

    def _dispatch(self, frame: Frame) -> None:
        kind = frame.type
        if kind == "log":
            # Console output after an invocation returned (e.g. a timer): capped like stderr.
            line = str(frame.header.get("line", ""))
            if self._stderr_budget > 0:
                self._stderr_budget -= len(line)
                log.info("worker %s (%s) log: %s", self.pid, self.key, line[:1024])
                if self._stderr_budget <= 0:
                    log.warning("worker %s: output cap reached, further output dropped", self.pid)
            return
        if kind == "hello":
            if self._hello is None or self._hello.done():
                raise ProtocolError("unexpected hello")
            self._hello.set_result(frame)
            return
        fut = self._pending.pop(frame.header.get("id", -1), None)
        if fut is None:
            raise ProtocolError(f"{kind!r} frame for unknown id {frame.header.get('id')!r}")
        if not fut.done():  # done = the caller was cancelled; the reply is dropped.
            fut.set_result(frame)

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        stream = self._proc.stderr
        while chunk := await stream.read(65536):
            if not self.heap_exhausted:
                seen = self.stderr_tail[-64:] + chunk
                self.heap_exhausted = any(marker in seen for marker in HEAP_EXHAUSTED)
            self.stderr_tail = (self.stderr_tail + chunk)[-2048:]
            if self._stderr_budget <= 0:
                continue
            text = chunk[: self._stderr_budget].decode(errors="replace").rstrip()
            self._stderr_budget -= len(chunk)
            log.warning("worker %s (%s) stderr: %s", self.pid, self.key, text)
            if self._stderr_budget <= 0:
                log.warning("worker %s: stderr cap reached, further output dropped", self.pid)

    # -- requests ------------------------------------------------------------------------
    def send(
        self, header: dict[str, Any], segments: Sequence[bytes] = (), *, hold: bool = True
    ) -> asyncio.Future[Frame]:
        """Queue one request frame now (frames go out in call order); return its reply future.

        ``hold``: whether the frame may wait up to the batch window for others when the worker
        is busy (see below); without it, it goes at the next loop iteration at the latest.
        Follow with ``drain()`` for back-pressure. Raises WorkerCrashed when the worker is
        gone, PayloadTooLarge when the frame would exceed the cap (nothing is sent then).
        """
        if self.state is WorkerState.DEAD or self._proc is None or self._proc.stdin is None:
            raise WorkerCrashed(f"worker {self.pid} is gone ({self.death_reason})")
        request_id = next(self._ids)
        data = encode_frame(
            {**header, "id": request_id}, segments, max_frame_bytes=self.settings.max_frame_bytes
        )
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Frame] = loop.create_future()
        self._pending[request_id] = fut
        outbox = self._outbox
        if outbox is not None:
            # The worker reads it with the others held in this loop iteration (one write, one
            # wake-up of the worker for all of them).
            outbox.append(data)
            self._outbox_bytes += len(data)
            if self._outbox_bytes >= OUTBOX_BYTES:
                self._flush()
                self._outbox = []
            elif not hold and self._window is not None:
                # Held frames wait for the window; this one does not, and takes them along.
                self._window.cancel()
                self._window = None
                loop.call_soon(self._flush)
            return fut
        if len(self._pending) > 1:
            # Busy (this is not its only call): this frame and those that follow go in one
            # write, one wake-up of the worker for all of them. The worker has calls to answer
            # meanwhile; a lone call on an idle worker is written at once.
            self._outbox = [data]
            self._outbox_bytes = len(data)
            if hold and self._batch_window_s and self.state is WorkerState.READY:
                # Held up to the batch window: calls that come one per loop turn (unary RPCs)
                # share the write too.
                self._window = loop.call_at(loop.time() + self._batch_window_s, self._flush_held)
            else:
                # Those of this loop turn (a stream message's batch) go at the start of the
                # next. So do calls that must not be held, and a call sent right behind the
                # load frame: its worker is not busy with other calls, and a first call must
                # not wait.
                loop.call_soon(self._flush)
            return fut
        self._write(data)
        return fut

    def _write(self, data: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
        except (ConnectionError, RuntimeError) as exc:
            self.kill("crashed")
            raise WorkerCrashed(f"worker {self.pid} stopped reading: {exc}") from exc

    def _flush_held(self) -> None:
        self._window = None
        self._flush()

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, None
        self._outbox_bytes = 0
        if not outbox or self.state is WorkerState.DEAD:
            return
        try:
            self._write(outbox[0] if len(outbox) == 1 else b"".join(outbox))
        except WorkerCrashed:
            pass  # killed: the calls in flight on it have failed already

    def write_buffered(self) -> bool:
        """Whether bytes wait in the pipe transport (``drain`` would wait)."""
        stdin = self._proc.stdin if self._proc is not None else None
        return stdin is not None and bool(stdin.transport.get_write_buffer_size())

    async def drain(self) -> None:
        """Wait while the pipe to the worker is full."""
        if self._proc is None or self._proc.stdin is None:
            return
        stdin = self._proc.stdin
        if not stdin.transport.get_write_buffer_size():
            return  # all written to the pipe already (the usual case): nothing to wait for
        try:
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.kill("crashed")
            raise WorkerCrashed(f"worker {self.pid} stopped reading: {exc}") from exc

    async def call(self, header: dict[str, Any], segments: Sequence[bytes] = ()) -> Frame:
        """Send one request frame and wait for its reply.

        Deadlines are the caller's (wrap in ``asyncio.timeout`` and ``kill`` on expiry).
        Raises WorkerCrashed when the worker dies first, PayloadTooLarge before sending.
        """
        fut = self.send(header, segments)
        try:
            await self.drain()
            return await fut
        finally:
            self.last_used = time.monotonic()

    async def settle(self) -> None:
        """Wait until no call is in flight (replies arrived or the worker died)."""
        while self._pending:
            await asyncio.wait(list(self._pending.values()))

    async def ping(self) -> float:
        """Round trip of a ping frame in milliseconds (a ping does not count as use)."""
        t0 = time.perf_counter()
        reply = self.send({"t": "ping"})
        await self.drain()
        await reply
        self.last_alive = time.monotonic()
        return (time.perf_counter() - t0) * 1000
