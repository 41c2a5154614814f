"""The delivery service: router, one worker per destination, and the replay pump."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.destination import DestinationWorker
from fnbox.delivery.integrations import IntegrationKeys
from fnbox.delivery.replay import ReplayPump
from fnbox.delivery.router import Router
from fnbox.delivery.routing import Connections, Routes
from fnbox.delivery.settings import DeliverySettings
from fnbox.delivery.tasks import cancel_and_wait
from fnbox.delivery.topics import TopicWorkers

__all__ = ["DeliveryService"]

log = logging.getLogger(__name__)


class DeliveryService:
    """Start with :meth:`start`, stop with :meth:`stop`; the bus and control plane are the
    caller's (it closes them)."""

    def __init__(self, *, settings: DeliverySettings, bus: Bus, control: ControlPlane) -> None:
        self.settings = settings
        self._bus = bus
        self._control = control
        self.workers: dict[str, DestinationWorker] = {}
        self._destinations = TopicWorkers(
            bus,
            h.DELIVERIES + ".",
            self._run_destination,
            interval=settings.discovery_seconds,
            name="delivery",
        )
        # Shared with a source processor in this process: it then routes its events itself.
        self.routes = Routes(
            Connections(control, settings.routing_cache_seconds),
            IntegrationKeys(control, settings.routing_cache_seconds),
        )
        self.router = Router(
            bus=bus,
            routes=self.routes,
            batch=settings.router_batch,
            lease=settings.lease_seconds,
            retry_delay=settings.platform_retry_seconds,
            on_topic=self._destinations.notice,
        )
        self._events = TopicWorkers(
            bus,
            h.EVENTS + ".",
            self.router.run_topic,
            interval=settings.discovery_seconds,
            name="router",
        )
        self.replays = ReplayPump(
            bus=bus,
            control=control,
            interval=settings.replay_poll_seconds,
            on_topic=self.notice,
        )
        self._replay_task: asyncio.Task[None] | None = None

    def replays_notify(self, notice: Callable[[str], None]) -> None:
        """Also tell ``notice`` of topics the replay pump publishes to (webhook replays)."""
        mine = self.notice

        def both(topic: str) -> None:
            mine(topic)
            notice(topic)

        self.replays.on_topic = both

    def notice(self, topic: str) -> None:
        """A topic was just published to in this process: serve it without waiting a scan."""
        if topic.startswith(h.EVENTS + "."):
            self._events.notice(topic)
        elif topic.startswith(h.DELIVERIES + "."):
            self._destinations.notice(topic)

    async def start(self) -> None:
        self._events.start()
        self._destinations.start()
        self._replay_task = asyncio.create_task(self.replays.run(), name="replay-pump")
        log.info("delivery workers started")

    async def stop(self) -> None:
        if self._replay_task is not None:
            await cancel_and_wait([self._replay_task])
        await self._events.stop()
        await self._destinations.stop()

    async def _run_destination(self, topic: str) -> None:
        worker = self.workers.get(topic)
        if worker is None:
            worker = DestinationWorker(
                topic=topic, settings=self.settings, bus=self._bus, control=self._control
            )
            self.workers[topic] = worker
        await worker.run()
        # Returned: the instance is gone and its topic retired. Should the topic appear again,
        # a new worker starts from scratch (the old one holds the instance's config as gone).
        if self.workers.get(topic) is worker:
            del self.workers[topic]
