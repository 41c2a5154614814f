"""``fnbox delivery``: the delivery workers alone (scale-out), over gRPC and the bus."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from fnbox.delivery.control import ControlPlane
from fnbox.delivery.runtime import (
    BusSection,
    ControlSection,
    open_pipeline_bus,
    read_token,
    run_until_signalled,
)
from fnbox.delivery.service import DeliveryService
from fnbox.delivery.settings import DeliverySettings
from fnbox.telemetry.lag import delivery_groups
from fnbox.telemetry.process import PipelineTelemetry
from fnbox.telemetry.settings import TelemetrySettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DeliveryRoot", "main", "run"]


class DeliveryRoot(BaseSettings):
    """Settings of a stand-alone delivery process (``FNBOX_`` environment, ``__`` nesting)."""

    model_config = SettingsConfigDict(
        env_prefix="FNBOX_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default=Path(".fnbox"), description="Where admin.token and bus.db live.")
    control: ControlSection = Field(default_factory=ControlSection, description="Control service.")
    bus: BusSection = Field(default_factory=BusSection, description="Event bus.")
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="Delivery workers."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Traces and metrics."
    )


async def serve(root: DeliveryRoot) -> None:
    """Run the delivery workers until SIGINT/SIGTERM."""
    token = read_token(root.control, root.data_dir)
    bus = await open_pipeline_bus(root.bus, root.data_dir)
    control = ControlPlane(root.control.target, token)
    service = DeliveryService(settings=root.delivery, bus=bus, control=control)
    telemetry = PipelineTelemetry(
        root.telemetry, role="delivery", bus=bus, groups=delivery_groups()
    )

    async def start() -> None:
        await telemetry.start()
        await service.start()

    async def stop() -> None:
        await service.stop()
        await control.close()
        await bus.close()
        await telemetry.stop()

    await run_until_signalled(start, stop)


def run(
    *,
    target: str | None = None,
    token: str | None = None,
    data_dir: str | Path | None = None,
    **overrides: Any,
) -> int:
    """Entry point of ``fnbox delivery``. Arguments given (not None) beat the environment;
    ``overrides`` are further settings, e.g. ``bus={"url": "nats://127.0.0.1:4222"}``."""
    settings: dict[str, Any] = dict(overrides)
    control = dict(settings.pop("control", {}))
    if target:
        control["target"] = target
    if token:
        control["token"] = token
    if control:
        settings["control"] = control
    if data_dir is not None:
        settings["data_dir"] = Path(data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(DeliveryRoot(**settings)))
    return 0


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
