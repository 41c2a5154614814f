"""Telemetry of a pipeline process: the providers (stand-alone processes only), the bus-lag
sampler and the optional scrape endpoint."""

from __future__ import annotations

from collections.abc import Mapping

from fnbox.bus import Bus
from fnbox.telemetry.lag import BusLagSampler
from fnbox.telemetry.prometheus import MetricsServer
from fnbox.telemetry.settings import TelemetrySettings
from fnbox.telemetry.setup import Telemetry, install

__all__ = ["PipelineTelemetry"]


class PipelineTelemetry:
    """Start after the bus is open, stop last.

    With ``settings`` (``fnbox gateway``, ``fnbox delivery``) this process's providers are
    installed (service name ``<service_name>-<role>``) and flushed at :meth:`stop`; without
    (inside ``fnbox serve``) the host process owns them and only the lag is sampled.
    """

    def __init__(
        self,
        settings: TelemetrySettings | None,
        *,
        role: str,
        bus: Bus,
        groups: Mapping[str, str],
    ) -> None:
        self._settings = settings
        self._role = role
        self._lag = BusLagSampler(bus, groups)
        self._metrics: MetricsServer | None = None
        self._installed: Telemetry | None = None
        self.metrics_address = ""

    async def start(self) -> None:
        settings = self._settings
        if settings is not None:
            self._installed = install(
                settings, service_name=f"{settings.service_name}-{self._role}"
            )
            if settings.metrics_listen:
                self._metrics = MetricsServer(settings.metrics_listen)
                self.metrics_address = await self._metrics.start()
        self._lag.start()

    async def sample(self) -> None:
        """Refresh the bus-lag figures now (they are otherwise refreshed every 10 s)."""
        await self._lag.sample()

    async def stop(self) -> None:
        await self._lag.stop()
        if self._metrics is not None:
            await self._metrics.stop()
        if self._installed is not None:
            self._installed.shutdown()
