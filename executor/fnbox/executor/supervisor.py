"""Worker supervision: start, track, evict, replace and stop Node processes.

gunicorn's arbiter verbs: ``spawn`` a worker, keep the warm pool ``refill``ed, ``evict`` idle
ones, account for each one ``_reaped``. Policy objects (policy.py) decide when; this module
carries it out. It knows functions only as a worker's ``key``: dispatch is pool.py's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fnbox.executor.errors import ExecutorClosed, ExecutorError
from fnbox.executor.limits import HostLimits, detect_host_limits
from fnbox.executor.policy import (
    EvictionPolicy,
    IdleCpuWatchdog,
    LivenessPolicy,
    SpawnBackoff,
)
from fnbox.executor.process import WorkerProcess, WorkerState, semi_space_mib
from fnbox.executor.settings import ExecutorSettings

log = logging.getLogger(__name__)
# A spawn stalls the event loop for a moment: never on the path of the call that took a worker.
REFILL_DELAY_S = 0.05


class Supervisor:
    """Owns every worker process of a pool: the warm generic ones, the specialised ones and
    the syntax checker."""

    def __init__(
        self,
        settings: ExecutorSettings,
        *,
        on_reaped: Callable[[WorkerProcess], None],
        on_round: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.host = HostLimits()
        self.workers: set[WorkerProcess] = set()
        self.generic: list[WorkerProcess] = []
        self.checker: WorkerProcess | None = None
        self.kills: Counter[str] = Counter()
        self.spawned = 0
        self._on_reaped = on_reaped
        self._on_round = on_round
        self._eviction = EvictionPolicy.from_settings(settings)
        self._idle_cpu = IdleCpuWatchdog.from_settings(settings)
        self._liveness = LivenessPolicy.from_settings(settings)
        self._probing: set[WorkerProcess] = set()
        self._backoff = SpawnBackoff(max_s=settings.spawn_backoff_max_s)
        self._generic_starting = 0
        self._checker_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._maintainer: asyncio.Task[None] | None = None
        self._refill_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Detect what the host allows, start the warm pool and the maintenance rounds."""
        self.host = await asyncio.to_thread(
            detect_host_limits, self.settings.use_cgroups, self.settings.network_namespaces
        )
        log.info("executor limits: %s", self.host.summary())
        if self.settings.use_cgroups == "require" and not (self.host.memory and self.host.pids):
            raise ExecutorError(f"cgroups required but unavailable: {self.host.summary()}")
        warm = [self.spawn(self.settings.memory_mib) for _ in range(self.settings.warm_workers)]
        self._generic_starting += len(warm)
        results = await asyncio.gather(*warm, return_exceptions=True)
        self._generic_starting -= len(warm)
        for r in results:
            if isinstance(r, BaseException):
                await self.close()
                raise r
            self.generic.append(r)
        self._maintainer = asyncio.create_task(self._maintain(), name="executor-maintenance")

    async def close(self) -> None:
        """Stop every worker (calls still in flight fail with ExecutorClosed)."""
        self._closed = True
        if self._refill_handle is not None:
            self._refill_handle.cancel()
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.settings.handshake_timeout_s)
        closed = ExecutorClosed("the executor closed while the call was running")
        await asyncio.gather(*(w.stop("closed", closed) for w in list(self.workers)))
        await asyncio.to_thread(self.host.remove)

    # -- workers -------------------------------------------------------------------------
    async def spawn(self, memory_mib: int, network: bool = True) -> WorkerProcess:
        """Start one worker and wait for its handshake (WorkerStartFailed otherwise)."""
        worker = WorkerProcess(
            self.settings, self.host, memory_mib=memory_mib, network=network, on_exit=self._reaped
        )
        self.workers.add(worker)
        self.spawned += 1
        try:
            await worker.start()
        except ExecutorError:
            worker.kill("spawn_failed")
            raise
        return worker

    def live_count(self) -> int:
        return sum(1 for w in self.workers if w.alive) + self._generic_starting

    def take_generic(self, memory_mib: int) -> WorkerProcess | None:
        """A warm worker with its memory limit set to ``memory_mib``, if one is ready (and its
        young generation, fixed at spawn for the platform's memory, is the one ``memory_mib``
        gets: else the caller spawns a worker of its own)."""
        if semi_space_mib(memory_mib) != semi_space_mib(self.settings.memory_mib):
            return None
        while self.generic:
            worker = self.generic.pop()
            if not worker.alive:
                continue
            if worker.cgroup.dirs.get("memory") and not worker.cgroup.set_memory(memory_mib):
                self.background(worker.stop("respecialise"))
                continue
            worker.memory_mib = memory_mib
            self.refill_soon()
            return worker
        return None

    def make_room(self, key: str) -> bool:
        """True when a worker for ``key`` may be added: a warm one is ready, the pool is below
        its cap, or the least recently used idle worker of another function is evicted."""
        if any(w.alive for w in self.generic):
            return True
        if self.live_count() < self.settings.max_workers:
            return True
        others = [w for w in self.workers if w.key not in (None, key) and w.alive]
        victim = self._eviction.lru_idle(others)
        if victim is None:
            return False
        self.background(victim.stop("lru"))
        return True

    async def get_checker(self) -> WorkerProcess:
        """The worker that only ever checks syntax (never loads user code)."""
        async with self._checker_lock:
            if self.checker is None or not self.checker.alive:
                self.checker = None
                self.checker = await self.spawn(self.settings.memory_mib)
            return self.checker

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- warm pool -----------------------------------------------------------------------
    def refill_soon(self) -> None:
        if self._refill_handle is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._refill_handle = loop.call_later(REFILL_DELAY_S, self._refill_now)

    def _refill_now(self) -> None:
        self._refill_handle = None
        if not self._closed:
            self.background(self.refill())

    async def refill(self) -> None:
        """Bring the warm pool back to ``warm_workers`` (with back-off after failures)."""
        while not self._closed:
            live = sum(1 for w in self.generic if w.alive) + self._generic_starting
            full = self.live_count() >= self.settings.max_workers
            if live >= self.settings.warm_workers or full:
                return
            if not self._backoff.may_spawn(time.monotonic()):
                return
            self._generic_starting += 1
            try:
                worker = await self.spawn(self.settings.memory_mib)
            except ExecutorError as exc:
                self._backoff.failed(time.monotonic())
                failures = self._backoff.failures
                log.warning("warm worker failed to start (%d in a row): %s", failures, exc)
                return
            finally:
                self._generic_starting -= 1
            self._backoff.succeeded()
            if self._closed:
                await worker.stop("closed")
                return
            self.generic.append(worker)

    # -- rounds --------------------------------------------------------------------------
    def _reaped(self, worker: WorkerProcess) -> None:
        """A worker's process is gone and reaped: account for it, tell the pool, refill."""
        self.workers.discard(worker)
        self._idle_cpu.forget(id(worker))
        self.kills[worker.death_reason or "unknown"] += 1
        self._on_reaped(worker)
        if not self._closed:
            self.background(self.refill())

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.settings.maintenance_interval_s)
            try:
                self.evict()
                self._probe_quiet_workers()
                self._on_round()
                await self.refill()
            except Exception:  # A bad round must not end supervision.
                log.exception("executor maintenance round failed")

    def evict(self) -> None:
        """Stop idle specialised workers (too idle, over the memory budget, burning CPU)."""
        specialised = [w for w in self.workers if w.alive and w.state is WorkerState.READY]
        total = sum(w.refresh_memory() for w in self.workers if w.alive)
        for worker, reason in self._eviction.victims(
            specialised, now=time.monotonic(), total_memory=total
        ):
            log.info("evicting worker %s (%s): %s", worker.pid, worker.key, reason)
            self.background(worker.stop(reason))
        self._kill_idle_spinners(specialised)

    def _probe_quiet_workers(self) -> None:
        live = [w for w in self.workers if w.alive and w.state is not WorkerState.STARTING]
        for worker in self._liveness.due(live, now=time.monotonic()):
            if worker not in self._probing:
                self._probing.add(worker)
                self.background(self._probe(worker))

    async def _probe(self, worker: WorkerProcess) -> None:
        try:
            async with asyncio.timeout(self.settings.handshake_timeout_s):
                await worker.ping()
        except TimeoutError:
            log.warning("worker %s (%s) does not answer pings; killing it", worker.pid, worker.key)
            worker.kill("unresponsive")
        except ExecutorError:
            pass  # Died meanwhile: reaped and accounted for already.
        finally:
            self._probing.discard(worker)

    def _kill_idle_spinners(self, workers: list[WorkerProcess]) -> None:
        for worker in workers:
            if worker.in_flight:
                # Busy: a deadline covers it, and its CPU time need not be read.
                self._idle_cpu.forget(id(worker))
                continue
            cpu = worker.cpu_seconds()
            if cpu is not None and self._idle_cpu.overused(
                id(worker), cpu_s=cpu, idle_since=worker.last_used
            ):
                log.warning(
                    "worker %s (%s) burns CPU with no call in flight; killing it",
                    worker.pid,
                    worker.key,
                )
                worker.kill("idle_cpu")
