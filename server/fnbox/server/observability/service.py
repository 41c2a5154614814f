"""The observability parts of one control service, started and stopped with it."""

from __future__ import annotations

import logging
from datetime import date

from fnbox.server.observability.gauges import DeadLetterGauge, _HasStats, watch_pool
from fnbox.server.observability.logs import FunctionLogs
from fnbox.server.observability.observer import InvocationObserver
from fnbox.server.observability.settings import TelemetrySettings
from fnbox.server.observability.usage import UsageMeter
from fnbox.server.secrets import SecretBox
from fnbox.server.store.base import Store
from fnbox.server.store.observability import ObservabilityStore, UsageRow
from fnbox.telemetry.prometheus import MetricsServer

__all__ = ["Observability"]

log = logging.getLogger(__name__)


class Observability:
    """Usage meter, function logs, gauges and the optional scrape endpoint.

    Order: :meth:`start` after the store opened; :meth:`end_streams` before the gRPC server
    stops (live tails would hold it for the whole grace); :meth:`stop` before the store closes
    (it writes the last usage and log entries).
    """

    def __init__(
        self, settings: TelemetrySettings, *, store: Store, pool: _HasStats, box: SecretBox
    ) -> None:
        self.settings = settings
        self.table: ObservabilityStore = store.observability()
        self.usage = UsageMeter(self.table, flush_s=settings.usage_flush_s)
        self.logs = FunctionLogs(settings, table=self.table, box=box, instances=store.get_instance)
        self.observer = InvocationObserver(usage=self.usage, logs=self.logs)
        self._pool = pool
        self._dead_letters = DeadLetterGauge(self.table, interval=settings.gauges_interval_s)
        self._metrics = MetricsServer(settings.metrics_listen) if settings.metrics_listen else None
        self.metrics_address = ""

    async def start(self) -> None:
        watch_pool(self._pool)
        self.usage.start()
        self.logs.start()
        self._dead_letters.start()
        if self._metrics is not None:
            self.metrics_address = await self._metrics.start()

    def end_streams(self) -> None:
        self.logs.end_tails()

    async def stop(self) -> None:
        if self._metrics is not None:
            await self._metrics.stop()
        await self._dead_letters.stop()
        await self.logs.stop()
        await self.usage.stop()

    async def usage_rows(
        self, workspace_id: str, *, function_id: str | None, since: date
    ) -> list[UsageRow]:
        """Stored usage plus what this replica has not written yet, by day and function."""
        stored = await self.table.usage(workspace_id, function_id=function_id, since=since)
        merged: dict[tuple[date, str], UsageRow] = {(r.day, r.function_id): r for r in stored}
        for extra in self.usage.unwritten(workspace_id, function_id, since):
            key = (extra.day, extra.function_id)
            known = merged.get(key)
            merged[key] = (
                extra
                if known is None
                else UsageRow(
                    known.workspace_id,
                    known.function_id,
                    known.day,
                    known.execution_ms + extra.execution_ms,
                    known.invocations + extra.invocations,
                    known.errors + extra.errors,
                    known.display_name,
                )
            )
        return [merged[key] for key in sorted(merged)]
