"""What the stand-alone gateway and delivery processes share: their settings root, the
sections for the control service and the bus, the service token, and how one runs until a
signal (:func:`serve_alone`, :func:`entry_settings`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fnbox.bus import Bus, open_bus
from fnbox.delivery.control import ControlPlane
from fnbox.telemetry.process import PipelineTelemetry
from fnbox.telemetry.settings import TelemetrySettings
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "BusSection",
    "ControlSection",
    "PipelineRoot",
    "bus_url",
    "entry_settings",
    "open_pipeline_bus",
    "read_token",
    "serve_alone",
]

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


class PipelineRoot(BaseSettings):
    """Settings of a stand-alone gateway or delivery process (``FNBOX_`` environment, ``__``
    nesting); each adds its own section."""

    model_config = SettingsConfigDict(
        env_prefix="FNBOX_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default=Path(".fnbox"), description="Where admin.token and bus.db live.")
    control: ControlSection = Field(default_factory=ControlSection, description="Control service.")
    bus: BusSection = Field(default_factory=BusSection, description="Event bus.")
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Traces and metrics."
    )


class _Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_S = TypeVar("_S", bound=_Service)


async def serve_alone(
    root: PipelineRoot,
    *,
    role: str,
    groups: Mapping[str, str],
    make: Callable[[Bus, ControlPlane], _S],
    announce: Callable[[_S], str] | None = None,
) -> None:
    """Run the service ``make`` builds on the configured bus and control service, with its
    telemetry, until SIGINT/SIGTERM; ``announce`` gives the line printed once it serves."""
    token = read_token(root.control, root.data_dir)
    bus = await open_pipeline_bus(root.bus, root.data_dir)
    control = ControlPlane(root.control.target, token)
    service = make(bus, control)
    telemetry = PipelineTelemetry(root.telemetry, role=role, bus=bus, groups=groups)

    async def start() -> None:
        await telemetry.start()
        await service.start()
        if announce is not None:
            print(announce(service), flush=True)

    async def stop() -> None:
        await service.stop()
        await control.close()
        await bus.close()
        await telemetry.stop()

    await run_until_signalled(start, stop)


def entry_settings(
    *,
    target: str | None,
    token: str | None,
    data_dir: str | Path | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """A process's settings from its entry point's arguments: those given (not None) beat the
    environment; ``overrides`` are further settings, e.g. ``bus={"url": "nats://…"}``. Also
    sets up logging, as every entry point does first."""
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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return settings
