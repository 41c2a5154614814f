"""The gRPC server interceptor that gives every RPC a server span (the executor's and the
invocation spans nest under it). Providers and exporters are set up by ``fnbox.telemetry``."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor


def server_interceptor(provider: trace.TracerProvider | None = None) -> Any:
    """The OpenTelemetry grpc.aio server interceptor (None: the global provider)."""
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]
