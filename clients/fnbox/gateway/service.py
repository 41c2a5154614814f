"""The gateway service: the webhook HTTP server plus the source-function consumers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.routing import Routes
from fnbox.delivery.topics import TopicWorkers
from fnbox.gateway.http import WebhookEndpoint
from fnbox.gateway.instances import InstanceCache
from fnbox.gateway.processor import SourceProcessor
from fnbox.gateway.settings import GatewaySettings

__all__ = ["GatewayService"]

log = logging.getLogger(__name__)


class GatewayService:
    """Start with :meth:`start`; ``port`` is the bound HTTP port afterwards (``:0`` listens
    on a free one). The bus and control plane are the caller's (it closes them).

    ``on_topic`` is told of every topic this process publishes to (in-process delivery
    workers start on it without waiting for a scan). ``routes``, given when delivery runs in
    this process, makes the source processor publish to ``deliveries.*`` itself (no
    ``events.*`` hop through the router).
    """

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        control: ControlPlane,
        on_topic: Callable[[str], None] = lambda topic: None,
        routes: Routes | None = None,
        serve_http: bool = True,
    ) -> None:
        self.settings = settings
        self._serve_http = serve_http
        self.instances = InstanceCache(control, settings.instance_cache_seconds)
        self.processor = SourceProcessor(
            settings=settings,
            bus=bus,
            control=control,
            instances=self.instances,
            routes=routes,
            on_topic=on_topic,
        )
        self._webhooks = TopicWorkers(
            bus,
            h.WEBHOOKS + ".",
            self.processor.run_topic,
            interval=settings.discovery_seconds,
            name="gateway",
        )
        self.endpoint = WebhookEndpoint(
            settings=settings, bus=bus, instances=self.instances, on_topic=self.notice
        )
        self._runner: web.ServerRunner | None = None
        self.port = 0

    def notice(self, topic: str) -> None:
        """A ``webhooks.*`` topic was published to in this process."""
        if topic.startswith(h.WEBHOOKS + "."):
            self._webhooks.notice(topic)

    async def start(self) -> None:
        self._webhooks.start()
        if not self._serve_http:
            return
        host, _, port = self.settings.listen.rpartition(":")
        self._runner = web.ServerRunner(self.endpoint.server())
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or "127.0.0.1", int(port))
        await site.start()
        self.port = int(self._runner.addresses[0][1]) if self._runner.addresses else int(port)
        log.info("webhook gateway listening on http://%s:%d", host, self.port)

    async def stop(self) -> None:
        """Stop accepting webhooks first, then the consumers (unacked work is redelivered)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._webhooks.stop()
