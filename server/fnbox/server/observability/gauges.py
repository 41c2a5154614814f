"""Gauges read when metrics are collected: the worker pool's figures (from ``stats()``) and
the dead-letter queue's size (sampled from the store now and then: a count is a query)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from fnbox.executor.types import PoolStats
from fnbox.server.store.observability import ObservabilityStore
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["DeadLetterGauge", "watch_pool"]

log = logging.getLogger(__name__)


class _HasStats(Protocol):
    def stats(self) -> PoolStats: ...


_pools: weakref.WeakSet[_HasStats] = weakref.WeakSet()
_dead_letters: weakref.WeakSet[DeadLetterGauge] = weakref.WeakSet()


def watch_pool(pool: _HasStats) -> None:
    """Report ``pool``'s figures while it exists."""
    _pools.add(pool)


def _stats() -> list[PoolStats]:
    return [pool.stats() for pool in list(_pools)]


def _workers(options: CallbackOptions) -> Iterable[Observation]:
    stats = _stats()
    if not stats:
        return
    yield Observation(sum(s.workers_total for s in stats), {"state": "total"})
    yield Observation(sum(s.workers_busy for s in stats), {"state": "busy"})
    yield Observation(sum(s.workers_warm for s in stats), {"state": "warm"})


def _in_flight(options: CallbackOptions) -> Iterable[Observation]:
    stats = _stats()
    if stats:
        yield Observation(sum(s.in_flight for s in stats))


def _crash_looping(options: CallbackOptions) -> Iterable[Observation]:
    stats = _stats()
    if stats:
        yield Observation(sum(len(s.crash_looping) for s in stats))


def _kills(options: CallbackOptions) -> Iterable[Observation]:
    totals: Counter[str] = Counter()
    for s in _stats():
        totals.update(s.kills)
    for reason, count in sorted(totals.items()):
        yield Observation(count, {"reason": reason})


def _spawned(options: CallbackOptions) -> Iterable[Observation]:
    stats = _stats()
    if stats:
        yield Observation(sum(s.spawned for s in stats))


def _dlq(options: CallbackOptions) -> Iterable[Observation]:
    totals: Counter[str] = Counter()
    for gauge in list(_dead_letters):
        totals.update(gauge.counts)
    for workspace, count in sorted(totals.items()):
        yield Observation(count, {"workspace": workspace})


_meter = metrics.get_meter("fnbox.server")
_meter.create_observable_gauge(
    "fnbox.executor.workers",
    callbacks=[_workers],
    unit="1",
    description="Live Node workers: total, busy (running an invocation), warm (not yet "
    "specialised).",
)
_meter.create_observable_gauge(
    "fnbox.executor.in_flight", callbacks=[_in_flight], unit="1", description="Invocations running."
)
_meter.create_observable_gauge(
    "fnbox.executor.crash_looping",
    callbacks=[_crash_looping],
    unit="1",
    description="Function versions refused for crash-looping.",
)
_meter.create_observable_counter(
    "fnbox.executor.worker.kills",
    callbacks=[_kills],
    unit="1",
    description="Workers killed or lost, by reason (timeout, crashed, oom, evicted, ...).",
)
_meter.create_observable_counter(
    "fnbox.executor.worker.spawns", callbacks=[_spawned], unit="1", description="Workers started."
)
_meter.create_observable_gauge(
    "fnbox.dlq.size",
    callbacks=[_dlq],
    unit="1",
    description="Dead letters stored, by workspace.",
)


class DeadLetterGauge:
    """Counts the dead letters of the store every ``interval`` seconds."""

    def __init__(self, table: ObservabilityStore, *, interval: float) -> None:
        self._table = table
        self._interval = interval
        self.counts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        _dead_letters.add(self)
        self._task = asyncio.create_task(self._run(), name="dlq-gauge")

    async def stop(self) -> None:
        _dead_letters.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sample(self) -> None:
        self.counts = await self._table.dead_letter_counts()

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:
                log.debug("counting dead letters failed", exc_info=True)
            await asyncio.sleep(self._interval)
