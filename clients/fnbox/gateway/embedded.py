"""The pipeline inside ``fnbox serve``: gateway and delivery workers sharing one bus and one
gRPC channel to the control service started beside them."""

from __future__ import annotations

from typing import Any, Protocol

from fnbox.bus import Bus
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.runtime import BusSection, bus_url, open_url
from fnbox.delivery.service import DeliveryService
from fnbox.delivery.settings import DeliverySettings
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry.lag import delivery_groups, gateway_groups
from fnbox.telemetry.process import PipelineTelemetry

__all__ = ["PipelineComponent", "pipeline_component"]


class _Context(Protocol):
    """What ``fnbox.server.main.ComponentContext`` offers (the server is not imported)."""

    settings: Any
    control_target: str
    admin_token: str | None


class PipelineComponent:
    """Started after the control service, stopped before it (see ``fnbox.server.main``)."""

    def __init__(
        self,
        *,
        control_target: str,
        token: str,
        bus: BusSection,
        data_dir: Any,
        gateway: GatewaySettings,
        delivery: DeliverySettings,
    ) -> None:
        self._control_target = control_target
        self._token = token
        self._bus_url = bus_url(bus, data_dir)
        self._namespace = bus.namespace
        self._gateway_settings = gateway
        self._delivery_settings = delivery
        self.bus: Bus | None = None
        self.control: ControlPlane | None = None
        self.gateway: GatewayService | None = None
        self.delivery: DeliveryService | None = None
        self.telemetry: PipelineTelemetry | None = None

    async def start(self) -> list[str]:
        self.bus = await open_url(self._bus_url, self._namespace)
        # The host process (fnbox serve) owns the providers; only the bus lag is ours.
        groups = gateway_groups()
        if self._delivery_settings.enabled:
            groups.update(delivery_groups())
        self.telemetry = PipelineTelemetry(None, role="pipeline", bus=self.bus, groups=groups)
        await self.telemetry.start()
        self.control = ControlPlane(self._control_target, self._token)
        if self._delivery_settings.enabled:
            self.delivery = DeliveryService(
                settings=self._delivery_settings, bus=self.bus, control=self.control
            )
            await self.delivery.start()
        self.gateway = GatewayService(
            settings=self._gateway_settings,
            bus=self.bus,
            control=self.control,
            on_topic=self.delivery.notice if self.delivery else lambda topic: None,
            # Delivery beside the gateway: events skip the events.* hop (and the router).
            routes=self.delivery.routes if self.delivery else None,
        )
        await self.gateway.start()
        if self.delivery is not None:  # replays of webhooks go to the gateway's consumers
            self.delivery.replays_notify(self.gateway.notice)
        host = self._gateway_settings.listen.rsplit(":", 1)[0]
        return [f"http {host}:{self.gateway.port}"]

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        if self.control is not None:
            await self.control.close()
        if self.telemetry is not None:
            await self.telemetry.stop()
        if self.bus is not None:
            await self.bus.close()


def pipeline_component(context: _Context) -> PipelineComponent:
    """The factory ``fnbox serve`` calls with its ``ComponentContext``."""
    settings = context.settings
    if not context.admin_token:
        raise RuntimeError("the pipeline needs the admin token of the data directory")
    return PipelineComponent(
        control_target=context.control_target,
        token=context.admin_token,
        bus=BusSection(url=settings.bus.url, namespace=getattr(settings.bus, "namespace", "fnbox")),
        data_dir=settings.data_dir,
        gateway=GatewaySettings.model_validate(settings.gateway.model_dump()),
        delivery=DeliverySettings.model_validate(settings.delivery.model_dump()),
    )
