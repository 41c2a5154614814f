"""What the stand-alone gateway and delivery processes share: settings sections for the
control service and the bus, the service token, and running until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from fnbox.bus import Bus, open_bus
from pydantic import BaseModel, Field, SecretStr

__all__ = ["BusSection", "ControlSection", "bus_url", "open_pipeline_bus", "read_token"]

log = logging.getLogger(__name__)


class ControlSection(BaseModel):
    """How the pipeline reaches the control service (gRPC only)."""

    target: str = Field(default="127.0.0.1:50051", description="HOST:PORT of the control service.")
    token: SecretStr | None = Field(
        default=None,
        description="A platform-admin (service) token; empty: read <data dir>/admin.token.",
    )


class BusSection(BaseModel):
    """The event bus."""

    url: str = Field(
        default="",
        description="Empty: the SQLite bus under the data directory; nats://… for JetStream.",
    )
    namespace: str = Field(
        default="fnbox", description="Prefix isolating this deployment's topics."
    )


def read_token(control: ControlSection, data_dir: Path) -> str:
    """The configured token, else the one ``fnbox serve`` wrote to ``<data dir>/admin.token``."""
    if control.token is not None and control.token.get_secret_value():
        return control.token.get_secret_value()
    path = data_dir / "admin.token"
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SystemExit(f"no service token: set FNBOX_CONTROL__TOKEN or create {path}") from exc


def bus_url(bus: BusSection, data_dir: Path) -> str:
    """The bus URL, defaulting to the SQLite bus file under ``data_dir``."""
    return bus.url or f"sqlite:///{(data_dir / 'bus.db').resolve()}"


async def open_pipeline_bus(bus: BusSection, data_dir: Path) -> Bus:
    """Open (and connect) the bus these settings name."""
    return await open_url(bus_url(bus, data_dir), bus.namespace)


async def open_url(url: str, namespace: str) -> Bus:
    """Open and start the bus at ``url``."""
    opened = open_bus(url, namespace=namespace)
    await opened.start()
    return opened


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start, wait for SIGINT/SIGTERM, then stop (signal handlers only set an event)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await start()
    try:
        await stopping.wait()
    finally:
        log.info("shutting down")
        await stop()
