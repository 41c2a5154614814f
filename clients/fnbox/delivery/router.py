"""Fans each event out from ``events.<source>`` to ``deliveries.<destination>``.

Only events published to ``events.*`` pass here: those of a gateway running without delivery
in its process (scale-out), and any left from before. When delivery runs beside the gateway
(``fnbox serve``), the source processor publishes the same fan-out (:class:`Routes`) directly
and nothing goes through ``events.*``.

The fan-out is published (durably, dedup_id = messageId, so each destination gets an event
once per messageId) before the event is acknowledged: a crash redelivers the event and the
republished copies are dropped as duplicates. The ``integrations`` object is applied in the
fan-out (see :mod:`fnbox.delivery.routing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fnbox.bus import Bus, Delivery
from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing, publish_topics
from fnbox.delivery.routing import Routes

__all__ = ["GROUP", "Router"]

log = logging.getLogger(__name__)

GROUP = "router"


class Router:
    """:meth:`run_topic` routes one ``events.<source>`` topic."""

    def __init__(
        self,
        *,
        bus: Bus,
        routes: Routes,
        batch: int,
        lease: float,
        retry_delay: float,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._bus = bus
        self._routes = routes
        self._batch = batch
        self._lease = lease
        self._retry_delay = retry_delay
        self._on_topic = on_topic
        self.routed = 0
        self.filtered = 0

    async def run_topic(self, topic: str) -> None:
        while True:
            try:
                deliveries = await self._bus.consume(
                    topic, GROUP, batch=self._batch, wait=1.0, lease=self._lease
                )
            except Exception:
                log.warning("consuming %s failed", topic, exc_info=True)
                await asyncio.sleep(self._retry_delay)
                continue
            if deliveries:
                await self._route(deliveries)

    async def _route(self, deliveries: list[Delivery]) -> None:
        events = (
            Outgoing(
                d.message.data,
                d.message.headers,
                d.message.headers.get(h.MESSAGE_ID) or d.message.id,
            )
            for d in deliveries
        )
        try:
            fan_out = await self._routes.fan_out(events)
            # The events are acked with their fan-out (one SQLite transaction).
            await publish_topics(self._bus, fan_out.by_topic, acked=deliveries)
        except Exception:
            log.warning("routing %d events failed; retrying", len(deliveries), exc_info=True)
            for delivery in deliveries:
                await _quietly(delivery.nak(self._retry_delay))
            return
        for topic in fan_out.by_topic:
            self._on_topic(topic)
        self.routed += len(deliveries)
        self.filtered += fan_out.filtered
        fan_out.count_filtered()


async def _quietly(action: object) -> None:
    try:
        if asyncio.iscoroutine(action):
            await action
    except Exception:
        log.warning("could not settle a bus message", exc_info=True)
