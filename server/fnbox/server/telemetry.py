"""Tracing: a TracerProvider from settings, and the gRPC server interceptor that gives every RPC
a server span (the executor's and the invocation spans nest under it)."""

from __future__ import annotations

from typing import Any

from fnbox.server.settings import TelemetrySettings
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)


def tracer_provider(settings: TelemetrySettings) -> TracerProvider:
    """A provider exporting to the configured OTLP endpoint and/or the console; with neither,
    spans are still made (trace context still flows to workers) but go nowhere."""
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = settings.otlp_endpoint.startswith("http://")
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=insecure)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if settings.console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process-wide one (the executor takes its tracer from there)."""
    trace.set_tracer_provider(provider)


def server_interceptor(provider: trace.TracerProvider | None = None) -> Any:
    """The OpenTelemetry grpc.aio server interceptor (None: the global provider)."""
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]
