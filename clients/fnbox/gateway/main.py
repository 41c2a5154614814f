"""``fnbox gateway``: the webhook gateway alone (scale-out), over gRPC and the bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fnbox.delivery.runtime import PipelineRoot, entry_settings, serve_alone
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry.lag import gateway_groups
from pydantic import Field

__all__ = ["GatewayRoot", "main", "run"]


class GatewayRoot(PipelineRoot):
    """Settings of a stand-alone gateway process (``FNBOX_`` environment, ``__`` nesting)."""

    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="Webhook gateway."
    )


async def serve(root: GatewayRoot) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    host = root.gateway.listen.rsplit(":", 1)[0]
    await serve_alone(
        root,
        role="gateway",
        groups=gateway_groups(),
        make=lambda bus, control: GatewayService(settings=root.gateway, bus=bus, control=control),
        announce=lambda service: f"webhook gateway listening on http://{host}:{service.port}",
    )


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
    settings = entry_settings(target=target, token=token, data_dir=data_dir, overrides=overrides)
    if http_listen:
        settings["gateway"] = {**settings.get("gateway", {}), "listen": http_listen}
    asyncio.run(serve(GatewayRoot(**settings)))
    return 0


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
