"""Usage metering: execution milliseconds, invocations and errors per function per UTC day.

Counted in memory on the hot path, added to the store every ``usage_flush_s`` and on
shutdown (a failed write is kept and added next time). Readers get the stored figures plus
what this replica has not written yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from fnbox.server.store.observability import ObservabilityStore, UsageRow

__all__ = ["UsageMeter"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Counts:
    execution_ms: float = 0.0
    invocations: int = 0
    errors: int = 0

    def add(self, other: _Counts) -> None:
        self.execution_ms += other.execution_ms
        self.invocations += other.invocations
        self.errors += other.errors


_Key = tuple[str, str, date]  # workspace, function, day


class UsageMeter:
    """Accumulates usage and writes it to ``table`` every ``flush_s`` seconds."""

    def __init__(self, table: ObservabilityStore, *, flush_s: float) -> None:
        self._table = table
        self._flush_s = flush_s
        self._pending: dict[_Key, _Counts] = {}
        self._writing: dict[_Key, _Counts] = {}  # being written: still shown to readers
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # The UTC day of the last invocation counted (its number since the epoch, and date).
        self._day_number = -1
        self._day = date(1970, 1, 1)

    def record(
        self, workspace_id: str, function_id: str, *, at: float, duration_ms: float, error: bool
    ) -> None:
        """Count one invocation that ended at ``at`` (epoch seconds)."""
        day_number = int(at // 86400)
        if day_number != self._day_number:
            self._day_number = day_number
            self._day = datetime.fromtimestamp(at, UTC).date()
        day = self._day
        counts = self._pending.get((workspace_id, function_id, day))
        if counts is None:
            counts = self._pending[(workspace_id, function_id, day)] = _Counts()
        counts.execution_ms += duration_ms
        counts.invocations += 1
        counts.errors += error

    def unwritten(self, workspace_id: str, function_id: str | None, since: date) -> list[UsageRow]:
        """This replica's figures not written yet, for a reader to add."""
        return [
            UsageRow(w, f, day, c.execution_ms, c.invocations, c.errors)
            for pending in (self._writing, self._pending)
            for (w, f, day), c in pending.items()
            if w == workspace_id and (function_id is None or f == function_id) and day >= since
        ]

    async def flush(self) -> None:
        """Write what was counted since the last flush."""
        async with self._lock:
            pending = self._writing = self._pending
            self._pending = {}
            rows = [
                UsageRow(w, f, day, c.execution_ms, c.invocations, c.errors)
                for (w, f, day), c in pending.items()
            ]
            try:
                await self._table.add_usage(rows)
            except Exception:
                log.warning("writing usage failed; keeping it for the next flush", exc_info=True)
                for key, counts in pending.items():
                    self._pending.setdefault(key, _Counts()).add(counts)
            finally:
                self._writing = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-flush")

    async def stop(self) -> None:
        """Stop flushing periodically and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()
