"""The control service: store + worker pool + grpc.aio server with health and reflection."""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
from fnbox.executor.pool import WorkerPool
from fnbox.functions.v1 import (
    dead_letters_pb2,
    dead_letters_pb2_grpc,
    observability_pb2,
    observability_pb2_grpc,
    service_pb2,
    service_pb2_grpc,
)
from fnbox.server import telemetry
from fnbox.server.auth import Authenticator
from fnbox.server.bootstrap import bootstrap
from fnbox.server.cache import ReadCache
from fnbox.server.dispatch import Dispatcher
from fnbox.server.observability.service import Observability
from fnbox.server.secrets import load_secret_box
from fnbox.server.servicers.base import Deps
from fnbox.server.servicers.dead_letters import DeadLetterServicer
from fnbox.server.servicers.functions import FunctionService
from fnbox.server.servicers.instances import InstanceService
from fnbox.server.servicers.observability import ObservabilityServicer
from fnbox.server.servicers.workspaces import WorkspaceService
from fnbox.server.settings import Settings, StoreSettings
from fnbox.server.store.base import Store
from fnbox.server.store.sqlite import SqliteStore
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    *(
        service_pb2.DESCRIPTOR.services_by_name[name].full_name
        for name in ("FunctionService", "InstanceService", "WorkspaceService")
    ),
    dead_letters_pb2.DESCRIPTOR.services_by_name["DeadLetterService"].full_name,
    observability_pb2.DESCRIPTOR.services_by_name["ObservabilityService"].full_name,
)


def make_store(settings: StoreSettings, data_dir: Path) -> Store:
    """SQLite under ``data_dir`` by default; PostgreSQL for a ``postgresql://`` URL."""
    url = settings.url
    if not url:
        return SqliteStore(data_dir / "registry.db")
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        # Imported by name: the PostgreSQL store is optional at this layer.
        module = importlib.import_module("fnbox.server.store.postgres")
        return cast(Store, module.PostgresStore(url))
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")


class ListenError(OSError):
    """The gRPC listen address cannot be bound: the user's to fix, reported in one line."""


def _bind_problem(listen: str) -> str:
    """Why ``host:port`` cannot be bound, as the OS says it (grpc's own error does not)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port)))
    except (OSError, ValueError) as exc:
        return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return "grpc could not bind it"


class ControlService:
    """Owns the control service's parts and starts/stops them in order."""

    def __init__(
        self,
        settings: Settings,
        *,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.store = make_store(settings.store, settings.data_dir)
        self.pool = WorkerPool(settings.executor)
        self.health = HealthServicer()
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.grpc.max_message_bytes),
                ("grpc.max_send_message_length", settings.grpc.max_message_bytes),
            ],
        )
        # Server spans: each method handler is wrapped once as it is registered (no
        # interceptor, which grpc.aio would run per call).
        telemetry.instrument(self.server, tracer_provider)
        self.address = ""
        self.deps: Deps | None = None
        self.observability: Observability | None = None
        self._started: list[str] = []

    async def start(self) -> None:
        """Open the store, bootstrap on first start, start the pool, then serve."""
        settings = self.settings
        await self.store.open()
        self._started.append("store")
        box = load_secret_box(settings.auth, settings.data_dir)
        token_file = await bootstrap(
            self.store, settings.data_dir, display_name=settings.auth.bootstrap_workspace
        )
        if token_file is not None:
            log.info("first start: platform-admin token written to %s", token_file)
        await self.pool.start()
        self._started.append("pool")
        cache = ReadCache(self.store, ttl_s=settings.store.cache_ttl_s)
        auth = Authenticator(self.store, cache)
        deps = Deps(store=self.store, auth=auth, box=box, settings=settings)
        self.deps = deps
        observability = Observability(settings.telemetry, store=self.store, pool=self.pool, box=box)
        self.observability = observability
        await observability.start()
        self._started.append("observability")
        dispatcher = Dispatcher(
            store=self.store,
            executor=self.pool,
            box=box,
            settings=settings,
            cache=cache,
            observer=observability.observer,
        )
        functions = FunctionService(deps, dispatcher=dispatcher)
        registrations: list[tuple[Callable[[Any, grpc.aio.Server], None], object]] = [
            (service_pb2_grpc.add_FunctionServiceServicer_to_server, functions),
            (service_pb2_grpc.add_InstanceServiceServicer_to_server, InstanceService(deps)),
            (service_pb2_grpc.add_WorkspaceServiceServicer_to_server, WorkspaceService(deps)),
            (
                dead_letters_pb2_grpc.add_DeadLetterServiceServicer_to_server,
                DeadLetterServicer(deps),
            ),
            (
                observability_pb2_grpc.add_ObservabilityServiceServicer_to_server,
                ObservabilityServicer(deps, observability),
            ),
        ]
        for add, servicer in registrations:
            add(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if settings.grpc.reflection:
            reflection.enable_server_reflection(
                (
                    *SERVICE_NAMES,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                self.server,
            )
        listen = settings.grpc.listen
        try:
            port = self.server.add_insecure_port(listen)
        except RuntimeError as exc:  # grpc says only "Failed to bind"
            raise ListenError(
                f"cannot listen for gRPC on {listen}: {_bind_problem(listen)} "
                "(set --grpc-listen or FNBOX_GRPC__LISTEN)"
            ) from exc
        self.address = f"{listen.rsplit(':', 1)[0]}:{port}"
        await self.server.start()
        self._started.append("server")
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def begin_shutdown(self) -> None:
        """Tell load balancers to go elsewhere (health NOT_SERVING); still serving."""
        await self.health.enter_graceful_shutdown()

    async def stop(self) -> None:
        """Health NOT_SERVING → stop accepting → drain in-flight RPCs → stop workers → close
        the store. Safe after a partial start."""
        await self.begin_shutdown()
        if self.observability is not None:
            self.observability.end_streams()  # live tails would hold the server's grace
        if "server" in self._started:
            await self.server.stop(self.settings.grpc.shutdown_grace_s)
        if "pool" in self._started:
            await self.pool.close()
        if "observability" in self._started and self.observability is not None:
            await self.observability.stop()  # the last usage and log entries, then the store
        if "store" in self._started:
            await self.store.close()
        self._started.clear()
