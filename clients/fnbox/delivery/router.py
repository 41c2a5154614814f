"""Fans each event out from ``events.<source>`` to ``deliveries.<destination>``.

The fan-out is published (durably, dedup_id = messageId, so each destination gets an event
once per messageId) before the event is acknowledged: a crash redelivers the event and the
republished copies are dropped as duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fnbox.bus import Bus, Delivery
from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing, publish_all
from fnbox.delivery.routing import Connections

__all__ = ["GROUP", "Router"]

log = logging.getLogger(__name__)

GROUP = "router"


class Router:
    """:meth:`run_topic` routes one ``events.<source>`` topic."""

    def __init__(
        self,
        *,
        bus: Bus,
        connections: Connections,
        batch: int,
        lease: float,
        retry_delay: float,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._bus = bus
        self._connections = connections
        self._batch = batch
        self._lease = lease
        self._retry_delay = retry_delay
        self._on_topic = on_topic
        self.routed = 0

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
        fanout: dict[str, list[Outgoing]] = {}
        try:
            for delivery in deliveries:
                message = delivery.message
                source = message.headers[h.SOURCE]
                message_id = message.headers.get(h.MESSAGE_ID) or message.id
                for destination in await self._connections.destinations(source):
                    headers = dict(message.headers)
                    headers[h.INSTANCE] = destination.name
                    fanout.setdefault(h.topic(h.DELIVERIES, destination.name), []).append(
                        Outgoing(message.data, headers, message_id)
                    )
            for topic, messages in fanout.items():
                await publish_all(self._bus, topic, messages)
        except Exception:
            log.warning("routing %d events failed; retrying", len(deliveries), exc_info=True)
            for delivery in deliveries:
                await _quietly(delivery.nak(self._retry_delay))
            return
        for topic in fanout:
            self._on_topic(topic)
        for delivery in deliveries:
            await _quietly(delivery.ack())
        self.routed += len(deliveries)


async def _quietly(action: object) -> None:
    try:
        if asyncio.iscoroutine(action):
            await action
    except Exception:
        log.warning("could not settle a bus message", exc_info=True)
