"""Supervision policy, kept apart from the process mechanism (as gunicorn and jupyter_client do).

Everything here is pure: it takes times and numbers, never touches a process. The pool asks
these objects *whether/which/how much*; it alone decides *how*.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from fnbox.executor.settings import ExecutorSettings
from fnbox.executor.types import FunctionSpec


class WorkerView(Protocol):
    """What policy may know about a worker."""

    @property
    def in_flight(self) -> int: ...
    @property
    def last_used(self) -> float: ...
    @property
    def memory_bytes(self) -> int: ...


W = TypeVar("W", bound=WorkerView)


@dataclass(frozen=True, slots=True)
class FunctionLimits:
    """A function's effective limits after clamping to the settings' maxima."""

    timeout_s: float
    memory_mib: int


def function_limits(spec: FunctionSpec, settings: ExecutorSettings) -> FunctionLimits:
    timeout_ms = spec.timeout_s * 1000 if spec.timeout_s > 0 else settings.default_timeout_ms
    timeout_ms = min(max(timeout_ms, 1.0), float(settings.max_timeout_ms))
    memory = spec.memory_mib if spec.memory_mib > 0 else settings.memory_mib
    memory = min(max(memory, 32), settings.max_memory_mib)
    return FunctionLimits(timeout_s=timeout_ms / 1000, memory_mib=memory)


def worker_key(spec: FunctionSpec, limits: FunctionLimits, settings: ExecutorSettings) -> str:
    """What a worker is specialised for: the code version plus what was fixed at its spawn
    (memory limit, network namespace), so that a changed limit never reuses an old worker."""
    key = spec.key
    if limits.memory_mib != settings.memory_mib:
        key += f"@{limits.memory_mib}MiB"
    return key if spec.network else key + "+no-network"


class CrashLoopGuard:
    """Counts crashes per function; too many in a window puts the function in cool-down."""

    def __init__(self, *, max_crashes: int, window_s: float, cooldown_s: float) -> None:
        self.max_crashes = max_crashes
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self._crashes: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        # What the crash that started a cool-down said (for the calls refused meanwhile).
        self._why: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> CrashLoopGuard:
        return cls(
            max_crashes=settings.crash_loop_max_crashes,
            window_s=settings.crash_loop_window_s,
            cooldown_s=settings.crash_loop_cooldown_s,
        )

    def record_crash(self, key: str, now: float, why: str = "") -> bool:
        """Note one crash (``why``: what the worker's callers were told); True when this
        crash starts a cool-down."""
        times = self._crashes.setdefault(key, deque())
        times.append(now)
        while times and times[0] < now - self.window_s:
            times.popleft()
        if len(times) >= self.max_crashes:
            self._blocked_until[key] = now + self.cooldown_s
            self._why[key] = why
            times.clear()
            return True
        return False

    @property
    def has_blocked(self) -> bool:
        """Whether any function is (or was, until asked again) in cool-down."""
        return bool(self._blocked_until)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may run again, or None when it is not blocked."""
        until = self._blocked_until.get(key)
        if until is None:
            return None
        if now >= until:
            del self._blocked_until[key]
            self._why.pop(key, None)
            return None
        return until - now

    def why(self, key: str) -> str:
        """What the crash that put ``key`` in cool-down said ("" when unknown)."""
        return self._why.get(key, "")

    def blocked(self, now: float) -> list[str]:
        return [k for k, until in self._blocked_until.items() if until > now]

    def forget(self, key: str) -> None:
        self._crashes.pop(key, None)


class SpawnBackoff:
    """Exponential pause between failed spawns of generic workers, reset by a success."""

    def __init__(self, *, base_s: float = 0.1, max_s: float = 30.0) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.failures = 0
        self._not_before = 0.0

    def failed(self, now: float) -> None:
        self.failures += 1
        self._not_before = now + min(self.max_s, self.base_s * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0

    def may_spawn(self, now: float) -> bool:
        return now >= self._not_before


class EvictionPolicy:
    """Which idle specialised workers to stop: too idle, or over the memory budget (LRU)."""

    def __init__(self, *, idle_evict_s: float, memory_budget_bytes: int) -> None:
        self.idle_evict_s = idle_evict_s
        self.memory_budget_bytes = memory_budget_bytes

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> EvictionPolicy:
        return cls(
            idle_evict_s=settings.idle_evict_s,
            memory_budget_bytes=settings.memory_budget_mib * 1024 * 1024,
        )

    def victims(
        self, workers: Iterable[W], *, now: float, total_memory: int
    ) -> list[tuple[W, str]]:
        """Idle workers to stop, each with the reason ("idle" or "memory_budget")."""
        idle = sorted((w for w in workers if w.in_flight == 0), key=lambda w: w.last_used)
        chosen: list[tuple[W, str]] = []
        for w in idle:
            if now - w.last_used >= self.idle_evict_s:
                chosen.append((w, "idle"))
                total_memory -= w.memory_bytes
        for w in idle:
            if total_memory <= self.memory_budget_bytes:
                break
            if any(w is c for c, _ in chosen):
                continue
            chosen.append((w, "memory_budget"))
            total_memory -= w.memory_bytes
        return chosen

    @staticmethod
    def lru_idle(workers: Iterable[W]) -> W | None:
        """The least recently used idle worker, to make room for another function."""
        idle = [w for w in workers if w.in_flight == 0]
        return min(idle, key=lambda w: w.last_used) if idle else None


class ScalingPolicy:
    """Whether a function's least busy worker takes a call, and when to add a worker.

    Asked on every call: it takes numbers the pool already has (O(1)), not the workers.
    Another worker helps a function whose workers compute; one whose calls wait on I/O
    (a destination's fetch) is served best by one worker taking many calls at a time (one
    read and one write for a batch of them, fewer processes to wake), so a busy worker gets a
    sibling only once it also uses ``scale_up_cpu`` of a core, or once it is full.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        scale_up_in_flight: int,
        max_per_function: int,
        scale_up_cpu: float = 0.0,
    ):
        self.max_in_flight = max_in_flight
        self.scale_up_in_flight = min(scale_up_in_flight, max_in_flight)
        self.max_per_function = max_per_function
        self.scale_up_cpu = scale_up_cpu

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> ScalingPolicy:
        return cls(
            max_in_flight=settings.max_in_flight_per_worker,
            scale_up_in_flight=settings.scale_up_in_flight,
            max_per_function=settings.max_workers_per_function,
            scale_up_cpu=settings.scale_up_cpu,
        )

    def has_slot(self, in_flight: int) -> bool:
        """Whether a worker with ``in_flight`` calls may take one more."""
        return in_flight < self.max_in_flight

    def asks_cpu(self, least_in_flight: int) -> bool:
        """Whether ``wants_more`` needs the least busy worker's CPU load (measuring it reads
        /proc now and then, so the pool asks only then)."""
        return bool(self.scale_up_cpu) and (
            self.scale_up_in_flight <= least_in_flight < self.max_in_flight
        )

    def wants_more(
        self, workers: int, starting: int, least_in_flight: int, least_cpu: float | None = None
    ) -> bool:
        """True when the function should get one more worker (if the pool has room).

        ``workers``: its live workers; ``starting``: those being started for it;
        ``least_in_flight``: the calls on the least busy live worker (unused when none);
        ``least_cpu``: that worker's recent CPU load in cores, None while unknown (asked
        only when ``asks_cpu``)."""
        if workers + starting >= self.max_per_function or starting:
            return False
        if not workers or least_in_flight >= self.max_in_flight:
            return True
        if least_in_flight < self.scale_up_in_flight:
            return False
        return not self.scale_up_cpu or (least_cpu is not None and least_cpu >= self.scale_up_cpu)


class IdleCpuWatchdog:
    """Spots workers burning CPU with no call in flight: a timer or loop left running after
    its invocation returned is covered by no deadline, yet takes a core from everyone.

    CPU time is counted from the first sample after a worker's last call ended (an idle
    period), so the verdict does not depend on how busy the host is, only on the total.
    """

    def __init__(self, *, max_idle_cpu_s: float) -> None:
        self.max_idle_cpu_s = max_idle_cpu_s
        self._idle: dict[int, tuple[float, float]] = {}  # worker → (idle since, CPU then)

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> IdleCpuWatchdog:
        return cls(max_idle_cpu_s=settings.idle_cpu_max_ms / 1000)

    def overused(self, worker_id: int, *, cpu_s: float, idle_since: float) -> bool:
        """Record a CPU-time sample of an idle worker (``idle_since``: when its last call
        ended; a busy worker is not sampled, :meth:`forget` it). True when it used more than
        the allowance since the first sample of its current idle period."""
        if self.max_idle_cpu_s <= 0:
            self._idle.pop(worker_id, None)
            return False
        period = self._idle.get(worker_id)
        if period is None or period[0] != idle_since:
            self._idle[worker_id] = (idle_since, cpu_s)
            return False
        return cpu_s - period[1] > self.max_idle_cpu_s

    def forget(self, worker_id: int) -> None:
        self._idle.pop(worker_id, None)


class _Pingable(WorkerView, Protocol):
    @property
    def last_alive(self) -> float: ...


P = TypeVar("P", bound=_Pingable)


class LivenessPolicy:
    """Which quiet workers to ping: any with no call and no answered ping for ``interval_s``."""

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> LivenessPolicy:
        return cls(interval_s=settings.liveness_interval_s)

    def due(self, workers: Iterable[P], *, now: float) -> list[P]:
        return [
            w
            for w in workers
            if w.in_flight == 0 and now - max(w.last_used, w.last_alive) >= self.interval_s
        ]
