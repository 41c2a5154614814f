"""Bus lag: how many messages each consumer group has not settled yet, per topic.

A sampler asks the bus now and then (``pending`` costs a query or a round trip) and the
``fnbox.bus.pending`` gauge reports the last figures of every sampler of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Iterable, Mapping

from fnbox.bus import Bus
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["BusLagSampler", "delivery_groups", "gateway_groups"]

log = logging.getLogger(__name__)

_samplers: weakref.WeakSet[BusLagSampler] = weakref.WeakSet()


def _observe(options: CallbackOptions) -> Iterable[Observation]:
    for sampler in list(_samplers):
        for (topic, group), pending in sampler.pending.items():
            yield Observation(pending, {"topic": topic, "group": group})


metrics.get_meter("fnbox.pipeline").create_observable_gauge(
    "fnbox.bus.pending",
    callbacks=[_observe],
    unit="1",
    description="Messages of a topic its consumer group has not acknowledged yet (bus lag).",
)


def gateway_groups() -> dict[str, str]:
    """Topic prefix → consumer group of the gateway's source processors."""
    from fnbox.delivery import headers as h
    from fnbox.gateway.http import GROUP

    return {h.WEBHOOKS + ".": GROUP}


def delivery_groups() -> dict[str, str]:
    """Topic prefix → consumer group of the router and the destination workers (``events.*``
    holds only what gateways without delivery in their process publish: none under serve)."""
    from fnbox.delivery import destination, router
    from fnbox.delivery import headers as h

    return {h.EVENTS + ".": router.GROUP, h.DELIVERIES + ".": destination.GROUP}


class BusLagSampler:
    """Samples ``bus.pending`` of every topic under the given prefixes every ``interval``."""

    def __init__(self, bus: Bus, groups: Mapping[str, str], *, interval: float = 10.0) -> None:
        self._bus = bus
        self._groups = dict(groups)
        self._interval = interval
        self.pending: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        _samplers.add(self)
        self._task = asyncio.create_task(self._run(), name="bus-lag")

    async def stop(self) -> None:
        _samplers.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sample(self) -> None:
        """Refresh the figures once."""
        seen: dict[tuple[str, str], int] = {}
        for prefix, group in self._groups.items():
            for topic in await self._bus.topics(prefix):
                seen[(topic, group)] = await self._bus.pending(topic, group)
        self.pending = seen

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:
                log.debug("sampling the bus lag failed", exc_info=True)
            await asyncio.sleep(self._interval)
