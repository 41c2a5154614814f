"""``fnbox delivery``: the delivery workers alone (scale-out), over gRPC and the bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fnbox.delivery.runtime import PipelineRoot, entry_settings, serve_alone
from fnbox.delivery.service import DeliveryService
from fnbox.delivery.settings import DeliverySettings
from fnbox.telemetry.lag import delivery_groups
from pydantic import Field

__all__ = ["DeliveryRoot", "main", "run"]


class DeliveryRoot(PipelineRoot):
    """Settings of a stand-alone delivery process (``FNBOX_`` environment, ``__`` nesting)."""

    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="Delivery workers."
    )


async def serve(root: DeliveryRoot) -> None:
    """Run the delivery workers until SIGINT/SIGTERM."""
    await serve_alone(
        root,
        role="delivery",
        groups=delivery_groups(),
        make=lambda bus, control: DeliveryService(settings=root.delivery, bus=bus, control=control),
    )


def run(
    *,
    target: str | None = None,
    token: str | None = None,
    data_dir: str | Path | None = None,
    **overrides: Any,
) -> int:
    """Entry point of ``fnbox delivery``. Arguments given (not None) beat the environment;
    ``overrides`` are further settings, e.g. ``bus={"url": "nats://127.0.0.1:4222"}``."""
    settings = entry_settings(target=target, token=token, data_dir=data_dir, overrides=overrides)
    asyncio.run(serve(DeliveryRoot(**settings)))
    return 0


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
