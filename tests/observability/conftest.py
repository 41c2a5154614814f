"""Fixtures of the observability tests.

``spans``: the finished spans of this process (the global tracer provider, installed once per
session by :func:`fnbox.telemetry.setup.install`, with an in-memory exporter added).
``stack``: a control service, the webhook gateway and the delivery workers in this process
(SQLite store and bus under tmp_path, real Node workers allowed to reach 127.0.0.1), a client
and an HTTP sink. ``store``/``postgres_url``: the server tests' store fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fnbox.client import FnboxClient
from fnbox.gateway.embedded import PipelineComponent, pipeline_component
from fnbox.server.app import ControlService
from fnbox.server.main import ComponentContext
from fnbox.server.settings import load_settings
from fnbox.telemetry.settings import TelemetrySettings
from fnbox.telemetry.setup import Telemetry, install
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.sink import Sink
from tests.server.conftest import postgres_url, store

__all__ = ["Stack", "postgres_url", "store"]

FAST_GATEWAY = {
    "listen": "127.0.0.1:0",
    "retry_first_min_seconds": 0.05,
    "retry_first_max_seconds": 0.1,
    "retry_max_seconds": 0.5,
    "platform_retry_seconds": 0.2,
    "discovery_seconds": 0.2,
    "instance_cache_seconds": 0.2,
}
FAST_DELIVERY = {
    "retry_first_seconds": 0.05,
    "retry_max_seconds": 0.5,
    "platform_retry_seconds": 0.2,
    "discovery_seconds": 0.2,
    "routing_cache_seconds": 0.2,
    "batch_max_wait_seconds": 0.3,
}


@pytest.fixture(scope="session")
def telemetry() -> tuple[Telemetry, InMemorySpanExporter]:
    installed = install(TelemetrySettings(), record_spans=True)
    exporter = InMemorySpanExporter()
    installed.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return installed, exporter


@pytest.fixture
def spans(telemetry: tuple[Telemetry, InMemorySpanExporter]) -> InMemorySpanExporter:
    exporter = telemetry[1]
    exporter.clear()
    return exporter


@dataclass
class Stack:
    service: ControlService
    pipeline: PipelineComponent
    client: FnboxClient
    sink: Sink
    token: str

    @property
    def target(self) -> str:
        return self.service.address

    @property
    def http(self) -> str:
        assert self.pipeline.gateway is not None
        return f"http://127.0.0.1:{self.pipeline.gateway.port}"


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def stack_factory(
    tmp_path: Path, telemetry: tuple[Telemetry, InMemorySpanExporter]
) -> AsyncIterator[StackFactory]:
    """``await stack_factory(telemetry={...})``: settings overrides per section."""
    running: list[Stack] = []

    async def start(**overrides: Any) -> Stack:
        data_dir = tmp_path / f"stack{len(running)}"
        settings = load_settings(
            data_dir=data_dir,
            grpc={"listen": "127.0.0.1:0"},
            executor={"warm_workers": 1, "egress_allow": ["127.0.0.1/32"]}
            | overrides.pop("executor", {}),
            gateway=FAST_GATEWAY | overrides.pop("gateway", {}),
            delivery=FAST_DELIVERY | overrides.pop("delivery", {}),
            telemetry={"logs_flush_s": 0.1, "logs_tail_poll_s": 0.2}
            | overrides.pop("telemetry", {}),
            **overrides,
        )
        service = ControlService(settings, tracer_provider=telemetry[0].tracer_provider)
        await service.start()
        token = (data_dir / "admin.token").read_text().strip()
        pipeline = pipeline_component(ComponentContext(settings, service.address, token))
        try:
            await pipeline.start()
        except BaseException:
            await service.stop()
            raise
        sink = Sink()
        await sink.__aenter__()
        stack = Stack(service, pipeline, FnboxClient(service.address, token), sink, token)
        running.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in reversed(running):
            await stack.client.close()
            await stack.sink.__aexit__(None, None, None)
            await stack.pipeline.stop()
            await stack.service.stop()


@pytest.fixture
async def stack(stack_factory: StackFactory) -> Stack:
    return await stack_factory()
