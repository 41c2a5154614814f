"""Fans each event out from ``events.<source>`` to ``deliveries.<destination>``.

The fan-out is published (durably, dedup_id = messageId, so each destination gets an event
once per messageId) before the event is acknowledged: a crash redelivers the event and the
republished copies are dropped as duplicates.

An event's ``integrations`` object is applied here, before any destination or insert function
runs (SEGMENT-SPEC §1): a destination it blocks is not published to at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fnbox.bus import Bus, Delivery
from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing, publish_all
from fnbox.delivery.integrations import IntegrationKeys, allows, integrations_of, restricts
from fnbox.delivery.routing import Connections, Destination
from opentelemetry import metrics

__all__ = ["GROUP", "Router"]

log = logging.getLogger(__name__)

GROUP = "router"

_filtered = metrics.get_meter("fnbox.pipeline").create_counter(
    "fnbox.delivery.filtered",
    unit="1",
    description="Events not routed to a connected destination, by reason (integrations: the "
    "event's integrations object blocks that destination).",
)


class Router:
    """:meth:`run_topic` routes one ``events.<source>`` topic."""

    def __init__(
        self,
        *,
        bus: Bus,
        connections: Connections,
        keys: IntegrationKeys,
        batch: int,
        lease: float,
        retry_delay: float,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._bus = bus
        self._connections = connections
        self._keys = keys
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
        fanout: dict[str, list[Outgoing]] = {}
        filtered = 0
        try:
            for delivery in deliveries:
                message = delivery.message
                source = message.headers[h.SOURCE]
                message_id = message.headers.get(h.MESSAGE_ID) or message.id
                destinations = await self._connections.destinations(source)
                allowed = await self._allowed(message.data, destinations)
                filtered += len(destinations) - len(allowed)
                for destination in allowed:
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
        await _quietly(self._bus.ack_many(deliveries))
        self.routed += len(deliveries)
        if filtered:
            self.filtered += filtered
            _filtered.add(filtered, {"reason": "integrations"})

    async def _allowed(self, event: bytes, destinations: list[Destination]) -> list[Destination]:
        """The destinations the event's integrations object lets through (all without one)."""
        if not destinations:
            return destinations
        integrations = integrations_of(event)
        if integrations is None or not restricts(integrations):
            return destinations
        return [
            d
            for d in destinations
            if allows(integrations, await self._keys.key(d.name, d.function))
        ]


async def _quietly(action: object) -> None:
    try:
        if asyncio.iscoroutine(action):
            await action
    except Exception:
        log.warning("could not settle a bus message", exc_info=True)
