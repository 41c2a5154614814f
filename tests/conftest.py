"""Fixtures shared by every test folder.

``running_server``: a real control service (SQLite in tmp_path, real Node worker pool,
grpc.aio on 127.0.0.1:0) with an open channel and the bootstrap platform-admin token.
``server_factory``: the same with settings overrides, for tests that need other limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fnbox.server.app import ControlService
from fnbox.server.settings import load_settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF


@dataclass
class RunningServer:
    service: ControlService
    address: str
    channel: grpc.aio.Channel
    admin_token: str
    data_dir: Path

    def auth(self, token: str | None = None) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying ``token`` (default: the platform-admin token)."""
        return (("authorization", f"Bearer {token or self.admin_token}"),)


ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """``await server_factory(tracer_provider=None, **settings_overrides)``; each server gets
    its own data directory under tmp_path and is stopped at teardown."""
    started: list[RunningServer] = []

    async def start(
        *, tracer_provider: TracerProvider | None = None, **overrides: Any
    ) -> RunningServer:
        data_dir = tmp_path / f"server{len(started)}"
        executor = {"warm_workers": 1, "egress_allow": ["127.0.0.1/32"]}
        executor |= overrides.pop("executor", {})
        grpc_section = {"listen": "127.0.0.1:0"} | overrides.pop("grpc", {})
        settings = load_settings(
            data_dir=data_dir, grpc=grpc_section, executor=executor, **overrides
        )
        service = ControlService(settings, tracer_provider=tracer_provider)
        await service.start()
        channel = grpc.aio.insecure_channel(service.address)
        token = (data_dir / "admin.token").read_text().strip()
        server = RunningServer(service, service.address, channel, token, data_dir)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            await server.channel.close(grace=None)
            await server.service.stop()


@pytest.fixture
async def running_server(server_factory: ServerFactory) -> RunningServer:
    return await server_factory()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Finished spans of the module's tests, from the process's global SDK tracer provider
    (made if missing; skipped when that provider samples nothing)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if provider.sampler is ALWAYS_OFF:
        pytest.skip("this process's tracer provider records no spans")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
