"""Function logs: failed invocations (the most recent per function), a sample of successful
ones, and live tails.

The dispatcher's observer asks :meth:`FunctionLogs.kind_of` on the hot path and, for the
few invocations that are kept or watched, calls :meth:`FunctionLogs.record`, which only
queues. A background task builds the redacted entries, hands them to the tails watching the
function and writes the ones to keep in batches; pruning (count per function at each write,
age now and then) keeps the table small. A tail also polls the store for what other replicas
keep, so it sees their errors behind a load balancer.

Work is bounded when errors flood in: an unwatched function's entries wait for the next write
in a queue holding only as many as are kept (older ones would be pruned anyway), so at most
``logs_max_errors`` entries per function are built per write interval. A watched function's
entries are built at once, for the tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from fnbox.executor import types as ex
from fnbox.functions.v1 import observability_pb2 as opb
from fnbox.server import names
from fnbox.server.observability.entries import Finished, build_entry, is_error
from fnbox.server.observability.settings import TelemetrySettings
from fnbox.server.secrets import SecretBox
from fnbox.server.store.base import InstanceRecord
from fnbox.server.store.observability import LogRow, ObservabilityStore
from opentelemetry import metrics

__all__ = ["FunctionLogs", "Tail"]

log = logging.getLogger(__name__)

ERROR = opb.LOG_ENTRY_KIND_ERROR
SAMPLE = opb.LOG_ENTRY_KIND_SAMPLE
LIVE = opb.LOG_ENTRY_KIND_LIVE
_MAX_QUEUED = 10_000
_MAX_UNWRITTEN = 20_000
_TAIL_BUFFER = 1_000
_PRUNE_EVERY_S = 3600.0
_INSTANCE_TTL_S = 10.0

_dropped = metrics.get_meter("fnbox.server").create_counter(
    "fnbox.logs.dropped",
    unit="1",
    description="Log entries dropped: the queue or a slow tail was full, or a write failed.",
)


class Tail:
    """One TailLogs call: entries of one function, dropped (and counted) when it lags."""

    def __init__(self, owner: FunctionLogs, function_id: str, errors_only: bool) -> None:
        self._owner = owner
        self.function_id = function_id
        self.errors_only = errors_only
        self.queue: asyncio.Queue[opb.LogEntry | None] = asyncio.Queue(_TAIL_BUFFER)
        self.poller: asyncio.Task[None] | None = None

    def offer(self, entry: opb.LogEntry | None) -> None:
        if entry is not None and self.errors_only and entry.kind != ERROR:
            return
        try:
            self.queue.put_nowait(entry)
        except asyncio.QueueFull:
            _dropped.add(1, {"reason": "slow_tail"})

    async def entries(self) -> AsyncIterator[opb.LogEntry]:
        """The entries as they come, until the service ends its tails."""
        while (entry := await self.queue.get()) is not None:
            yield entry

    async def close(self) -> None:
        self._owner._close_tail(self)
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller


class FunctionLogs:
    """Queue, build, stream and store log entries; see the module docstring."""

    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        table: ObservabilityStore,
        box: SecretBox,
        instances: Callable[[str], Awaitable[InstanceRecord | None]],
        replica: str | None = None,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._table = table
        self._box = box
        self._get_instance = instances
        self._instances: dict[str, tuple[float, InstanceRecord | None]] = {}
        self.replica = replica or uuid.uuid4().hex[:12]
        self._chance = chance
        # Watched functions' entries (built at once) and the others' (at the next write).
        self._live: deque[tuple[Finished, opb.LogEntryKind]] = deque()
        self._kept: dict[tuple[str, opb.LogEntryKind], deque[Finished]] = {}
        self._unwritten: list[LogRow] = []
        self._tails: dict[str, set[Tail]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_write = time.monotonic()
        self._last_prune = 0.0
        self._keep: dict[int, int] = {
            ERROR: settings.logs_max_errors,
            SAMPLE: settings.logs_max_samples,
        }

    # -- the hot path --------------------------------------------------------------------
    def kind_of(self, function_id: str, outcome: ex.Outcome) -> opb.LogEntryKind | None:
        """The kind of entry an invocation of ``function_id`` ending in ``outcome`` gets, or
        None when it is not kept (a success not sampled) and nobody watches the function:
        the caller then builds nothing for it (most invocations)."""
        settings = self._settings
        if is_error(outcome):
            kind = ERROR if settings.logs_max_errors else LIVE
        elif settings.logs_sample_rate and settings.logs_max_samples:
            kind = SAMPLE if self._chance() < settings.logs_sample_rate else LIVE
        else:
            kind = LIVE
        if kind == LIVE and not self._tails.get(function_id):
            return None
        return kind

    def record(self, finished: Finished, kind: opb.LogEntryKind) -> None:
        """Queue ``finished`` as ``kind`` (from ``kind_of``)."""
        if self._tails.get(finished.function_id):
            if len(self._live) >= _MAX_QUEUED:
                _dropped.add(1, {"reason": "queue_full"})
                return
            self._live.append((finished, kind))
            self._wake.set()
        elif kind != LIVE:
            if not self._kept:
                self._wake.set()  # start the write timer
            key = (finished.function_id, kind)
            queue = self._kept.get(key)
            if queue is None:
                queue = self._kept[key] = deque(maxlen=self._keep[kind])
            queue.append(finished)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="function-logs")

    def end_tails(self) -> None:
        """End every live tail (shutdown: the streams finish instead of holding the server)."""
        for tails in self._tails.values():
            for tail in tails:
                tail.offer(None)

    async def stop(self) -> None:
        """Stop the background task, then build and write what is queued."""
        self.end_tails()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Build and write everything queued now (tests, shutdown)."""
        await self._build_live()
        await self._build_kept()
        await self._write()

    # -- tails ---------------------------------------------------------------------------
    def open_tail(self, function_id: str, *, errors_only: bool) -> Tail:
        """Start collecting entries of ``function_id`` (iterate :meth:`Tail.entries`, then
        :meth:`Tail.close`); entries finished from now on are not missed."""
        tail = Tail(self, function_id, errors_only)
        self._tails.setdefault(function_id, set()).add(tail)
        tail.poller = asyncio.create_task(self._poll_others(tail), name="tail-poll")
        return tail

    def watching(self, function_id: str) -> int:
        """How many live tails of ``function_id`` are open on this replica."""
        return len(self._tails.get(function_id, ()))

    def _close_tail(self, tail: Tail) -> None:
        watchers = self._tails.get(tail.function_id)
        if watchers is not None:
            watchers.discard(tail)
            if not watchers:
                del self._tails[tail.function_id]

    async def _poll_others(self, tail: Tail) -> None:
        kinds = [ERROR] if tail.errors_only else [ERROR, SAMPLE]
        after = await self._table.last_log_seq()
        while True:
            await asyncio.sleep(self._settings.logs_tail_poll_s)
            try:
                rows = await self._table.logs_after(
                    tail.function_id, after=after, not_replica=self.replica, kinds=kinds
                )
            except Exception:
                log.debug("polling stored log entries failed", exc_info=True)
                continue
            for row in rows:
                after = max(after, row.seq)
                tail.offer(opb.LogEntry.FromString(row.body))

    # -- background work -----------------------------------------------------------------
    async def _run(self) -> None:
        settings = self._settings
        await self._prune()
        while True:
            wait = max(0.0, settings.logs_flush_s - (time.monotonic() - self._last_write))
            pending = self._unwritten or self._kept
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait if pending else _PRUNE_EVERY_S):
                    await self._wake.wait()
            self._wake.clear()
            await self._build_live()
            if time.monotonic() - self._last_write >= settings.logs_flush_s:
                await self._build_kept()
                await self._write()
            if time.monotonic() - self._last_prune >= _PRUNE_EVERY_S:
                await self._prune()

    async def _instance(self, instance_id: str) -> InstanceRecord | None:
        """The instance (for its sensitive setting names), reused for a few seconds."""
        if not instance_id:
            return None
        cached = self._instances.get(instance_id)
        if cached is not None and time.monotonic() - cached[0] < _INSTANCE_TTL_S:
            return cached[1]
        if len(self._instances) > 10_000:
            self._instances.clear()
        instance = await self._get_instance(instance_id)
        self._instances[instance_id] = (time.monotonic(), instance)
        return instance

    async def _build_live(self) -> None:
        while self._live:
            finished, kind = self._live.popleft()
            await self._build(finished, kind)

    async def _build_kept(self) -> None:
        kept, self._kept = self._kept, {}
        for (_, kind), queue in kept.items():
            for finished in queue:
                await self._build(finished, kind)

    async def _build(self, finished: Finished, kind: opb.LogEntryKind) -> None:
        try:
            entry_id = names.new_id("lg")
            entry = build_entry(
                finished,
                kind,
                entry_id=entry_id,
                instance=await self._instance(finished.target.instance_id),
                box=self._box,
                max_input_bytes=self._settings.logs_max_input_bytes,
            )
        except Exception:
            log.warning("dropping a log entry of %s", finished.function_id, exc_info=True)
            _dropped.add(1, {"reason": "build_failed"})
            return
        for tail in self._tails.get(finished.function_id, ()):
            tail.offer(entry)
        if kind == LIVE:
            return
        self._unwritten.append(
            LogRow(
                id=entry_id,
                workspace_id=finished.workspace_id,
                function_id=finished.function_id,
                kind=kind,
                replica=self.replica,
                created_at=finished.at,
                body=entry.SerializeToString(),
            )
        )
        if len(self._unwritten) > _MAX_UNWRITTEN:
            excess = len(self._unwritten) - _MAX_UNWRITTEN
            del self._unwritten[:excess]
            _dropped.add(excess, {"reason": "write_backlog"})

    async def _write(self) -> None:
        self._last_write = time.monotonic()
        rows = _newest(sorted(self._unwritten, key=lambda row: row.created_at), self._keep)
        self._unwritten = []
        if not rows:
            return
        try:
            await self._table.add_logs(rows, keep=self._keep)
        except Exception:
            log.warning("writing %d log entries failed; retrying later", len(rows), exc_info=True)
            self._unwritten = rows + self._unwritten

    async def _prune(self) -> None:
        self._last_prune = time.monotonic()
        cutoff = time.time() - self._settings.logs_retention_days * 86400
        try:
            pruned = await self._table.prune_logs(before=cutoff)
        except Exception:
            log.warning("pruning old log entries failed", exc_info=True)
            return
        if pruned:
            log.info(
                "pruned %d log entries older than %g days",
                pruned,
                self._settings.logs_retention_days,
            )


def _newest(rows: list[LogRow], keep: dict[int, int]) -> list[LogRow]:
    """At most ``keep[kind]`` rows per function and kind, the newest (rows are in order)."""
    counts: dict[tuple[str, int], int] = {}
    kept: list[LogRow] = []
    for row in reversed(rows):
        key = (row.function_id, row.kind)
        if counts.get(key, 0) < keep.get(row.kind, 0):
            counts[key] = counts.get(key, 0) + 1
            kept.append(row)
    kept.reverse()
    return kept
