"""``fnbox gateway``: the webhook gateway alone (scale-out), over gRPC and the bus."""

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
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry.lag import gateway_groups
from fnbox.telemetry.process import PipelineTelemetry
from fnbox.telemetry.settings import TelemetrySettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GatewayRoot", "main", "run"]


class GatewayRoot(BaseSettings):
    """Settings of a stand-alone gateway process (``FNBOX_`` environment, ``__`` nesting)."""

    model_config = SettingsConfigDict(
        env_prefix="FNBOX_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default=Path(".fnbox"), description="Where admin.token and bus.db live.")
    control: ControlSection = Field(default_factory=ControlSection, description="Control service.")
    bus: BusSection = Field(default_factory=BusSection, description="Event bus.")
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="Webhook gateway."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Traces and metrics."
    )


async def serve(root: GatewayRoot) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    token = read_token(root.control, root.data_dir)
    bus = await open_pipeline_bus(root.bus, root.data_dir)
    control = ControlPlane(root.control.target, token)
    service = GatewayService(settings=root.gateway, bus=bus, control=control)
    telemetry = PipelineTelemetry(root.telemetry, role="gateway", bus=bus, groups=gateway_groups())

    async def start() -> None:
        await telemetry.start()
        await service.start()
        print(
            f"webhook gateway listening on http://{root.gateway.listen.rsplit(':', 1)[0]}:"
            f"{service.port}",
            flush=True,
        )

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
    http_listen: str | None = None,
    **overrides: Any,
) -> int:
    """Entry point of ``fnbox gateway``. Arguments given (not None) beat the environment;
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
    if http_listen:
        settings["gateway"] = {**settings.get("gateway", {}), "listen": http_listen}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(GatewayRoot(**settings)))
    return 0


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
