"""``fnbox serve`` and ``fnbox control``: build the settings, run until SIGINT/SIGTERM.

The all-in-one ``serve`` also runs the components listed in :data:`SERVE_COMPONENTS` (the
webhook gateway and delivery workers): each factory gets a :class:`ComponentContext` and
returns a :class:`Component`, started after the control service and stopped before it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fnbox.server.app import ControlService, ListenError
from fnbox.server.bootstrap import read_admin_token
from fnbox.server.settings import Settings, load_settings
from fnbox.telemetry import setup as telemetry

log = logging.getLogger("fnbox.server")


@dataclass(slots=True)
class ComponentContext:
    """What a component started by ``fnbox serve`` gets."""

    settings: Settings
    # HOST:PORT of the control service just started.
    control_target: str
    # The platform-admin token of the data directory (None if its file is gone).
    admin_token: str | None
    # Set when ``fnbox serve`` was asked to stop (SIGINT/SIGTERM), before components stop.
    stopping: asyncio.Event | None = None


class Component(Protocol):
    """Something ``fnbox serve`` runs beside the control service."""

    async def start(self) -> list[str]:
        """Start serving; return the lines to print, one per endpoint (``http HOST:PORT``)."""
        ...

    async def stop(self) -> None:
        """Stop accepting work, finish in-flight work, release resources."""
        ...


ComponentFactory = Callable[[ComponentContext], Component]

# Filled in by the pipeline (gateway, delivery); `fnbox control` runs none of them.
SERVE_COMPONENTS: list[ComponentFactory] = []


def serve(*, data_dir: str | None, grpc_listen: str | None, http_listen: str | None) -> int:
    """``fnbox serve``: control service plus :data:`SERVE_COMPONENTS`; returns the exit code."""
    settings = _settings(data_dir=data_dir, grpc_listen=grpc_listen, http_listen=http_listen)
    return asyncio.run(run(settings, SERVE_COMPONENTS or _pipeline_components(settings)))


def _pipeline_components(settings: Settings) -> list[ComponentFactory]:
    """The webhook gateway and delivery workers (one component), when installed: in a child
    process of ``fnbox serve`` (its own core), or in this one with
    ``serve.pipeline_in_process``."""
    try:
        if settings.serve.pipeline_in_process:
            from fnbox.gateway.embedded import pipeline_component

            return [pipeline_component]
        # The child imports the pipeline; this process only starts and watches it.
        from fnbox.gateway.child import child_pipeline_component
    except ModuleNotFoundError:
        return []
    return [child_pipeline_component]


def _startup_errors() -> tuple[type[Exception], ...]:
    """Exceptions of a component's start that are the user's to fix (a port in use, a bad
    bus URL): reported in one line, without a traceback."""
    try:
        from fnbox.gateway.child import PipelineStartError
    except ModuleNotFoundError:
        return (OSError,)
    return (PipelineStartError, OSError)


def control(
    *, data_dir: str | None, grpc_listen: str | None, http_listen: str | None = None
) -> int:
    """``fnbox control``: the control service alone (scale-out); returns the exit code."""
    settings = _settings(data_dir=data_dir, grpc_listen=grpc_listen, http_listen=http_listen)
    return asyncio.run(run(settings, []))


def _settings(
    *, data_dir: str | None, grpc_listen: str | None, http_listen: str | None
) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir:
        overrides["data_dir"] = data_dir
    if grpc_listen:
        overrides["grpc"] = {"listen": grpc_listen}
    if http_listen:
        overrides["gateway"] = {"listen": http_listen}
    return load_settings(config_file=os.environ.get("FNBOX_CONFIG"), **overrides)


async def run(settings: Settings, factories: Sequence[ComponentFactory]) -> int:
    """Run until SIGINT/SIGTERM, then shut down in order: health NOT_SERVING → components
    stop → gRPC stops accepting and drains → workers stop → store closes → spans flush."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    installed = telemetry.install(settings.telemetry)  # traces and metrics, OTLP if configured
    provider = installed.tracer_provider
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)  # handlers only set state
    service = ControlService(settings, tracer_provider=provider)
    started: list[Component] = []
    code = 0
    try:
        try:
            await service.start()
        except OSError as exc:
            # The user's to fix (a port in use, a store that cannot be reached, a data dir
            # that cannot be written): one line, no traceback.
            log.error("fnbox: %s", _one_line(exc))
            return 1  # (finally: what did start is stopped)
        _say(f"grpc {service.address}")
        context = ComponentContext(
            settings, service.address, read_admin_token(settings.data_dir), stopping
        )
        for factory in factories:
            component = factory(context)
            try:
                lines = await component.start()
            except Exception as exc:
                if not isinstance(exc, _startup_errors()):
                    raise
                # A user's problem (port in use, bad bus URL): one line, no traceback.
                log.error("fnbox serve: the webhook pipeline failed to start: %s", exc)
                code = 1
                break
            started.append(component)
            for line in lines:
                _say(line)
        else:
            # Everything built at start-up lives as long as the process: out of the collector's
            # way, a full collection no longer walks it (~100 ms of stalled loop every few
            # seconds under load here, ~4% of the process's CPU).
            gc.collect()
            gc.freeze()
            await stopping.wait()
    except Exception:
        log.exception("fnbox failed")
        code = 1
    finally:
        await service.begin_shutdown()
        for component in reversed(started):
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %r failed", component)
                code = 1
        await service.stop()
        installed.shutdown()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return code


def _one_line(exc: OSError) -> str:
    """``exc`` and, when it wraps another error, that error's first line (the cause a driver
    gave, e.g. "connection refused")."""
    cause = exc.__cause__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause).strip() and not isinstance(exc, ListenError):
        text = f"{text}: {str(cause).strip().splitlines()[0]}"
    return text


def _say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
